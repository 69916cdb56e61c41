// net/asio.h: the one place that pulls in Boost.Asio for Petrel, with the names we use.
// Heavy: include it only from files that do I/O (see DEPENDENCIES.md on compile time).
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace petrel::net {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
template <typename T = void>
using awaitable = asio::awaitable<T>;
// Completion token that returns (error_code, ...) instead of throwing: no exceptions on the
// data path (STYLE.md).
inline constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);
}  // namespace petrel::net
