// ip_key.cc: IPv6 /64 grouping of client addresses (ip_key.h).
#include "base/ip_key.h"

#include <arpa/inet.h>

namespace petrel::base {

std::string ip_key(std::string_view ip) {
  if (ip.find(':') == std::string_view::npos) return std::string(ip);
  in6_addr a{};
  if (::inet_pton(AF_INET6, std::string(ip).c_str(), &a) != 1) return std::string(ip);
  for (int i = 8; i < 16; ++i) a.s6_addr[i] = 0;
  char text[INET6_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET6, &a, text, sizeof text);
  return std::string(text) + "/64";
}

}  // namespace petrel::base
