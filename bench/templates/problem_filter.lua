-- nginx+Lua contender: problemgate's error rewrite (docs/contract.md
-- §1-§4, the detail/flat/nested JSON dialects and HTML) written the way an
-- OpenResty user would: buffer the error body in body_filter, decode it with
-- cjson, build an RFC 9457 problem table, encode it. Not tuned to be slow or
-- fast: idiomatic. Differences from problemgate, on purpose (simplicity):
-- member order is cjson's (a Lua table has none), no gzip decoding, no
-- field errors, no rate-limit headers, a chunked error body over the cap
-- is still rewritten (the headers went out before its size was known).
local cjson = require "cjson.safe"

local ngx = ngx
local type, tonumber = type, tonumber
local concat = table.concat
local find, lower, gsub, sub, match = string.find, string.lower, string.gsub, string.sub, string.match

local MAX_ERROR_BODY = 64 * 1024
local GENERIC_5XX = "The upstream service failed to process the request."

-- §3.1 catalog
local CODES = {
    [400] = "validation_error", [422] = "validation_error",
    [401] = "authentication_required", [403] = "permission_denied",
    [404] = "resource_not_found", [405] = "method_not_allowed",
    [406] = "not_acceptable", [408] = "request_timeout",
    [409] = "resource_conflict", [410] = "resource_gone",
    [412] = "precondition_failed", [413] = "payload_too_large",
    [415] = "unsupported_media_type", [429] = "rate_limited",
    [500] = "internal_error", [502] = "upstream_unavailable",
    [503] = "upstream_unavailable", [504] = "upstream_unavailable",
}

-- title with type about:blank = the status reason phrase (RFC 9457 §4.2.1)
local REASONS = {
    [400] = "Bad Request", [401] = "Unauthorized", [402] = "Payment Required",
    [403] = "Forbidden", [404] = "Not Found", [405] = "Method Not Allowed",
    [406] = "Not Acceptable", [407] = "Proxy Authentication Required",
    [408] = "Request Timeout", [409] = "Conflict", [410] = "Gone",
    [411] = "Length Required", [412] = "Precondition Failed",
    [413] = "Content Too Large", [414] = "URI Too Long",
    [415] = "Unsupported Media Type", [416] = "Range Not Satisfiable",
    [417] = "Expectation Failed", [421] = "Misdirected Request",
    [422] = "Unprocessable Content", [423] = "Locked", [424] = "Failed Dependency",
    [425] = "Too Early", [426] = "Upgrade Required", [428] = "Precondition Required",
    [429] = "Too Many Requests", [431] = "Request Header Fields Too Large",
    [451] = "Unavailable For Legal Reasons",
    [500] = "Internal Server Error", [501] = "Not Implemented",
    [502] = "Bad Gateway", [503] = "Service Unavailable",
    [504] = "Gateway Timeout", [505] = "HTTP Version Not Supported",
    [507] = "Insufficient Storage", [508] = "Loop Detected",
    [511] = "Network Authentication Required",
}

local function str(v)
    if type(v) == "string" and v ~= "" then return v end
    return nil
end

-- §3.2: CHANNEL_NOT_FOUND -> channel_not_found, invalidGrant -> invalid_grant
local function snake(s)
    if type(s) ~= "string" or s == "" or #s > 128 then return nil end
    s = gsub(s, "(%l)(%u)", "%1_%2")
    s = gsub(s, "(%d)(%u)", "%1_%2")
    s = gsub(s, "(%u)(%u%l)", "%1_%2")
    s = gsub(s, "[^%w]+", "_")
    s = gsub(s, "^_+", "")
    s = gsub(s, "_+$", "")
    if s == "" or find(s, "^%d+$") then return nil end
    return lower(s)
end

-- flat dialect: `error` is a code, or a short title ("Agent not found"),
-- unless it only repeats the reason phrase
local function flat_subcode(err, status)
    if find(err, "^[%w_%-%.]+$") then return snake(err) end
    if #err > 64 or not find(err, "^[%a ]+$") then return nil end
    local _, spaces = gsub(err, " +", "")
    if spaces > 5 then return nil end
    local reason = REASONS[status]
    if reason and lower(err) == lower(reason) then return nil end
    return snake(err)
end

local function html_detail(body, status)
    local t = match(body, "<[Tt][Ii][Tt][Ll][Ee]>%s*(.-)%s*</[Tt][Ii][Tt][Ll][Ee]>")
    if not t or t == "" then return nil end
    local reason = REASONS[status]
    if t == tostring(status) or (reason and (t == reason or t == status .. " " .. reason)) then
        return nil
    end
    return t
end

local function build(status, body)
    local detail, subcode
    local doc = cjson.decode(body)
    if type(doc) == "table" then
        local err = doc.error
        if type(err) == "table" then                    -- nested
            subcode = snake(err.code) or snake(err.status) or snake(err.type)
            detail = str(err.message) or str(err.reason)
        elseif type(err) == "string" then               -- flat
            detail = str(doc.details) or str(doc.error_description)
                     or str(doc.message) or err
            subcode = flat_subcode(err, status)
        elseif doc.detail ~= nil then                   -- detail
            local d = doc.detail
            if type(d) == "table" and not d[1] then
                detail = str(d.message)
                subcode = snake(d.code)
            else
                detail = str(d)
            end
            subcode = subcode or snake(doc.code)
        else                                            -- any JSON object
            detail = str(doc.message) or str(doc.msg) or str(doc.description)
                     or str(doc.error_message) or str(doc.title)
            subcode = snake(doc.code)
        end
    elseif status < 500 then                            -- html / text
        detail = html_detail(body, status)
    end

    if status >= 500 then
        if detail then ngx.log(ngx.INFO, "upstream detail: ", detail) end
        detail = GENERIC_5XX
    end

    local code = CODES[status] or (status < 500 and "client_error" or "internal_error")
    if subcode == code then subcode = nil end

    local instance = ngx.var.request_uri
    local q = find(instance, "?", 1, true)
    if q then instance = sub(instance, 1, q - 1) end

    return cjson.encode({
        type = "about:blank",
        title = REASONS[status] or (status < 500 and "Client Error" or "Server Error"),
        status = status,
        detail = detail,
        instance = instance,
        code = code,
        subcode = subcode,
        requestId = ngx.var.pg_request_id,
    })
end

local _M = {}

function _M.header_filter()
    local status = ngx.status
    if status < 400 or ngx.var.request_method == "HEAD" then return end
    local h = ngx.header
    local len = tonumber(h["Content-Length"])
    if len and len > MAX_ERROR_BODY then return end
    if h["Content-Encoding"] then return end
    ngx.ctx.problem = { n = 0 }
    h["Content-Type"] = "application/problem+json"
    h["Content-Length"] = nil
    h["ETag"] = nil
    h["Last-Modified"] = nil
end

function _M.body_filter()
    local buf = ngx.ctx.problem
    if not buf then return end
    local chunk, eof = ngx.arg[1], ngx.arg[2]
    if chunk ~= "" then
        buf.n = buf.n + 1
        buf[buf.n] = chunk
    end
    if not eof then
        ngx.arg[1] = nil
        return
    end
    ngx.arg[1] = build(ngx.status, concat(buf, "", 1, buf.n))
end

return _M
