// resolver.cc: names of the interface's enums, for logs.
#include "dns/resolver.h"

namespace petrel::dns {

std::string_view type_name(Type type) {
  switch (type) {
    case Type::kA: return "A";
    case Type::kAaaa: return "AAAA";
    case Type::kMx: return "MX";
    case Type::kTxt: return "TXT";
    case Type::kPtr: return "PTR";
  }
  return "?";
}

std::string_view status_name(Status status) {
  switch (status) {
    case Status::kOk: return "ok";
    case Status::kNoData: return "nodata";
    case Status::kNxDomain: return "nxdomain";
    case Status::kTemporary: return "temporary";
  }
  return "?";
}

}  // namespace petrel::dns
