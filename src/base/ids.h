// base/ids.h: queue ids.
//
// A queue id is 20 characters of Crockford base32: 10 for the milliseconds since the epoch,
// 4 for the process id, 6 for a per-process counter. Ids therefore sort by creation time, are
// unique across processes that run at the same time (the server and `petrel sendmail`), and are
// safe in file names, log lines and SMTP replies.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

namespace petrel::base {

inline constexpr std::size_t kQueueIdLength = 20;

// Thread: any.
std::string new_queue_id(std::chrono::system_clock::time_point now);
bool is_queue_id(std::string_view text);

}  // namespace petrel::base
