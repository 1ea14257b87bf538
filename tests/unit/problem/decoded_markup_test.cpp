// Issue 24, finding 11: entity decoding turned text an error page had escaped
// ("&lt;img src=x onerror=...&gt;") into markup in `detail`. Decoded text keeps its meaning but no
// '<' that would open a tag: it becomes U+2039 '‹' (see neutralize_tag_openers for why).
#include <doctest/doctest.h>

#include <string>

#include "problem/markup_text.hpp"
#include "support.hpp"

namespace {

namespace pp = problemgate::problem;

/// '<' followed by what starts a tag, comment or processing instruction in the HTML tokenizer.
bool has_tag_opener(const std::string& s) {
  auto opens_tag = [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '/' || c == '!' || c == '?';
  };
  for (std::size_t i = s.find('<'); i != std::string::npos; i = s.find('<', i + 1)) {
    if (i + 1 < s.size() && opens_tag(s[i + 1])) return true;
  }
  return false;
}

std::string detail_of(int status, std::string_view content_type, std::string_view body) {
  auto r = pgtest::run(status, content_type, body);
  REQUIRE_MESSAGE(r.body.contains("detail"), r.out.body);
  return r.body["detail"].get<std::string>();
}

}  // namespace

TEST_SUITE("problem.decoded_markup") {
  TEST_CASE("the reported page: an escaped <img> does not come back as a tag") {
    const std::string body =
        "<html><head><title>400 Bad Request</title></head><body>"
        "<p>Your input &lt;img src=x onerror=...&gt; is invalid</p></body></html>";
    auto r = pgtest::run(400, "text/html", body);
    CHECK(r.out.dialect == pp::Dialect::html);
    CHECK(r.body["detail"] == "Your input \u2039img src=x onerror=...> is invalid");
    CHECK_FALSE(has_tag_opener(r.out.body));
  }

  TEST_CASE("every way an html entity can spell a tag opener is neutralized") {
    for (
        std::string_view body : {
            "<p>bad &lt;script&gt;alert(1)&lt;/script&gt; value</p>",
            "<p>bad &LT;svg onload=alert(1)&GT; value</p>",
            "<p>bad &lt;!-- x --&gt; and &lt;?php ?&gt; value</p>",
            "<p>bad &lt;<b>img</b> src=x onerror=alert(1)&gt; value</p>",  // an inline tag in between
            "<p>bad &lt;&lt;img src=x&gt; value</p>",
            "<pre>bad &lt;IMG SRC=x&gt;\n&lt;/pre&gt; value</pre>",
        }) {
      CAPTURE(body);
      const std::string detail = detail_of(400, "text/html", body);
      CHECK_FALSE(has_tag_opener(detail));
      CHECK(detail.find("\u2039") != std::string::npos);
    }
  }

  TEST_CASE("a '<' that opens no tag is still decoded") {
    CHECK(detail_of(400, "text/html", "<p>limit &lt; 5 and &lt;= 10 &amp; &quot;ok&quot;</p>") ==
          "limit < 5 and <= 10 & \"ok\"");
    CHECK(detail_of(400, "text/html", "<p>need &lt;5 items, got &gt;9</p>") ==
          "need <5 items, got >9");
  }

  TEST_CASE("xml: pugixml's decoded entities and CDATA do not make tags either") {
    CHECK(
        detail_of(
            400, "application/xml",
            "<Error><Code>InvalidInput</Code><Message>Your input &lt;img src=x onerror=...&gt; is "
            "invalid</Message></Error>") == "Your input \u2039img src=x onerror=...> is invalid");
    CHECK(
        detail_of(
            400, "application/xml",
            "<Error><Code>X</Code><Message><![CDATA[<script>alert(1)</script>]]></Message></Error>") ==
        "\u2039script>alert(1)\u2039/script>");
    auto r = pgtest::run(400, "application/problem+xml",
                         "<problem xmlns=\"urn:ietf:rfc:7807\"><title>Bad &lt;b&gt;input</title>"
                         "<detail>see &lt;a href=x&gt;</detail></problem>");
    CHECK(r.body["title"] == "Bad \u2039b>input");
    CHECK(r.body["detail"] == "see \u2039a href=x>");
  }

  TEST_CASE("text and json bodies are passed through as written: they decode no entities") {
    CHECK(detail_of(400, "text/plain", "Your input &lt;img src=x onerror=...&gt; is invalid") ==
          "Your input &lt;img src=x onerror=...&gt; is invalid");
    CHECK(detail_of(400, "application/json",
                    R"({"message":"Your input &lt;img src=x&gt; is invalid"})") ==
          "Your input &lt;img src=x&gt; is invalid");
  }

  TEST_CASE("neutralize_tag_openers on its own") {
    namespace pi = pp::internal;
    auto neutral = [](std::string s) {
      pi::neutralize_tag_openers(s);
      return s;
    };
    CHECK(neutral("") == "");
    CHECK(neutral("<") == "<");
    CHECK(neutral("a<") == "a<");
    CHECK(neutral("<a") == "\u2039a");
    CHECK(neutral("x</y>z") == "x\u2039/y>z");
    CHECK(neutral("< a <1 <\u00e9") == "< a <1 <\u00e9");  // the HTML tokenizer reads these as text
    CHECK(neutral("<!<?<Z") == "\u2039!\u2039?\u2039Z");
  }
}
