#pragma once
#include <boost/beast/http/fields.hpp>

namespace problemgate::proxy {

/// Removes hop-by-hop fields (RFC 9110 §7.6.1): Connection and every field it names,
/// Keep-Alive, Proxy-Connection, TE, Trailer, Transfer-Encoding and Upgrade. The caller sets
/// the framing of the message it forwards again afterwards (chunked / Content-Length), so
/// framing is always re-serialised, never spliced through. Fields that must survive (our own
/// framing, X-Request-Id) are set by the caller after this runs, so a hostile
/// `Connection: X-Request-Id, Content-Length` cannot remove them.
void strip_hop_by_hop(boost::beast::http::fields& fields);

}  // namespace problemgate::proxy
