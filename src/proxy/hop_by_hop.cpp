#include "proxy/hop_by_hop.hpp"

#include <vector>
#include <string>
#include <string_view>

namespace problemgate::proxy {

namespace http = boost::beast::http;

void strip_hop_by_hop(http::fields& fields) {
  // Collect the names listed in every Connection field first: erasing while iterating a
  // field's value would invalidate it.
  std::vector<std::string> named;
  auto range = fields.equal_range(http::field::connection);
  for (auto it = range.first; it != range.second; ++it) {
    std::string_view v = it->value();
    std::size_t pos = 0;
    while (pos <= v.size()) {
      std::size_t comma = v.find(',', pos);
      if (comma == std::string_view::npos) comma = v.size();
      std::string_view token = v.substr(pos, comma - pos);
      while (!token.empty() && (token.front() == ' ' || token.front() == '\t')) token.remove_prefix(1);
      while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) token.remove_suffix(1);
      if (!token.empty()) named.emplace_back(token);
      pos = comma + 1;
    }
  }
  for (const auto& name : named) fields.erase(name);
  fields.erase(http::field::connection);
  fields.erase(http::field::keep_alive);
  fields.erase(http::field::proxy_connection);
  fields.erase(http::field::te);
  fields.erase(http::field::trailer);
  fields.erase(http::field::transfer_encoding);
  fields.erase(http::field::upgrade);
}

}  // namespace problemgate::proxy
