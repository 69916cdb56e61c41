// ids.cc: queue id generation.
#include "base/ids.h"

#include <unistd.h>

#include <atomic>
#include <cstdint>

namespace petrel::base {
namespace {

constexpr char kAlphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";  // Crockford: no I L O U

void append_base32(std::string& out, std::uint64_t value, int digits) {
  for (int i = digits - 1; i >= 0; --i) out += kAlphabet[(value >> (5 * i)) & 31];
}

std::atomic<std::uint64_t> g_counter{0};

}  // namespace

std::string new_queue_id(std::chrono::system_clock::time_point now) {
  auto ms = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count());
  std::string id;
  id.reserve(kQueueIdLength);
  append_base32(id, ms, 10);
  append_base32(id, static_cast<std::uint64_t>(::getpid()), 4);
  append_base32(id, g_counter.fetch_add(1, std::memory_order_relaxed), 6);
  return id;
}

bool is_queue_id(std::string_view text) {
  if (text.size() != kQueueIdLength) return false;
  for (char c : text) {
    bool ok = false;
    for (const char* a = kAlphabet; *a; ++a) ok = ok || (*a == c);
    if (!ok) return false;
  }
  return true;
}

}  // namespace petrel::base
