// transaction.cc: Session::send(), one mail transaction (RFC 5321 3.3), pipelined when the
// server offers PIPELINING (RFC 2920), with per-recipient results.
#include <fmt/format.h>

#include <algorithm>
#include <optional>

// GCC 12 reports -Wmismatched-new-delete on Asio's coroutine frames (its own operator new and
// delete) in some coroutines: GCC bug 109224, a false positive.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

#include "base/log.h"
#include "base/strings.h"
#include "smtp/client/body_encoder.h"
#include "smtp/client/commands.h"
#include "smtp/client/session.h"
#include "smtp/client/session_state.h"

namespace petrel::smtp::client {
namespace {

using State = Session::State;

// Body I/O sizes: stored body read per call, and encoded octets gathered before a write.
constexpr std::size_t kReadChunk = 16 * 1024;
constexpr std::size_t kWriteChunk = 32 * 1024;

// Per-recipient bookkeeping while the transaction runs.
class Outcome {
 public:
  Outcome(const Transaction& tx) {
    result_.recipients.reserve(tx.recipients.size());
    for (auto index : tx.recipients) result_.recipients.push_back(RecipientReply{index, {}, false});
    stage_.assign(tx.recipients.size(), kPending);
  }
  std::size_t size() const { return stage_.size(); }
  bool accepted(std::size_t i) const { return stage_[i] == kAccepted; }
  std::size_t accepted_count() const {
    std::size_t n = 0;
    for (auto st : stage_) n += st == kAccepted;
    return n;
  }
  // The RCPT reply of recipient i.
  void rcpt(std::size_t i, const mail::Reply& reply) {
    stage_[i] = reply.code / 100 == 2 ? kAccepted : kFinal;
    result_.recipients[i].reply = reply;
    result_.recipients[i].from_server = true;
  }
  // Gives every recipient not yet final (pending or accepted) this reply.
  void finish_open(const mail::Reply& reply, bool from_server) {
    for (std::size_t i = 0; i < stage_.size(); ++i) {
      if (stage_[i] == kFinal) continue;
      stage_[i] = kFinal;
      result_.recipients[i].reply = reply;
      result_.recipients[i].from_server = from_server;
    }
  }
  // Everyone gets this reply (nothing was sent).
  TransactionResult all(const mail::Reply& reply, bool usable) {
    for (auto& r : result_.recipients) {
      r.reply = reply;
      r.from_server = false;
    }
    result_.connection_usable = usable;
    return std::move(result_);
  }
  TransactionResult done(bool usable) {
    result_.connection_usable = usable;
    return std::move(result_);
  }

 private:
  enum Stage : std::uint8_t { kPending, kAccepted, kFinal };
  TransactionResult result_;
  std::vector<Stage> stage_;
};

// Ends the transaction on an I/O or protocol failure: the connection is closed, everyone
// without a final answer gets a synthesized temporary reply.
TransactionResult broken(State& s, Outcome& out, const Got& got, std::string_view what) {
  mail::Reply reply = s.failure_reply(got, what);
  PETREL_LOG(kInfo, "smtp.client.broken", "peer={} what=\"{}\" detail={}", s.peer(), what, base::log_escape(got.detail));
  s.close();
  out.finish_open(reply, false);
  return out.done(false);
}

// A reply that is not a failure of ours but ends the connection (RFC 5321 3.8: 421).
bool closes(const Got& got) { return got.ok() && got.reply.code == 421; }

// RFC 5321 4.3.2: MAIL, RCPT, RSET and the end of data are answered 2xx, 4xx or 5xx; a 3xx
// there (say the 354 meant for DATA, after a server skipped a pipelined reply) means the
// replies are out of step with the commands. That is a protocol error, not a reply to use.
Got in_step(Got got) {
  if (got.ok() && got.reply.code / 100 == 3) {
    got.kind = Got::kProtocol;
    got.detail = fmt::format("intermediate reply {} where a final reply belongs", got.reply.code);
  }
  return got;
}

// Streams the stored body through the encoder, then the final dot (RFC 5321 4.1.1.4).
// Returns a Got for the write side; a read_body error is kProtocol with read_failed set.
net::awaitable<Got> send_body(State& s, const Transaction& tx, bool& read_failed) {
  BodyEncoder encoder;
  std::string out;
  out.reserve(kWriteChunk + 2 * kReadChunk + 8);
  std::string chunk(kReadChunk, '\0');
  for (;;) {
    auto n = tx.read_body ? tx.read_body(chunk.data(), chunk.size()) : base::Result<std::size_t>(std::size_t{0});
    if (!n) {
      read_failed = true;
      Got got;
      got.kind = Got::kProtocol;
      got.detail = n.error().message;
      co_return got;
    }
    if (*n == 0) break;
    encoder.encode(std::string_view(chunk.data(), *n), out);
    if (out.size() >= kWriteChunk) {
      Got got = co_await s.write(out, s.options.timeouts.data_block);
      if (!got.ok()) co_return got;
      out.clear();
    }
  }
  encoder.finish(out);
  co_return co_await s.write(out, s.options.timeouts.data_block);
}

// RFC 3030 2: the body in BDAT chunks, the last marked LAST. With PIPELINING a chunk does not
// wait for the 250 to the one before, but at most kMaxUnread replies stay unread so that
// neither side's socket buffers fill up and stall the other. After a refused chunk no more are
// sent; `refused` then holds that reply. On success the returned Got holds the final reply.
constexpr std::size_t kMaxUnread = 8;

net::awaitable<Got> send_bdat(State& s, const Transaction& tx, bool pipelined, bool& read_failed,
                              std::optional<mail::Reply>& refused) {
  const auto& t = s.options.timeouts;
  BodyEncoder encoder(BodyEncoder::Mode::kBdat);
  std::string out, wire;
  out.reserve(kWriteChunk + 2 * kReadChunk + 8);
  std::string chunk(kReadChunk, '\0');
  std::size_t unread = 0;
  bool last_sent = false;
  Got got;

  auto send_chunk = [&](bool last) -> net::awaitable<Got> {
    wire = fmt::format("BDAT {}{}\r\n", out.size(), last ? " LAST" : "");
    wire += out;
    out.clear();
    Got w = co_await s.write(wire, t.data_block, unread > 0);
    if (w.ok()) ++unread;
    co_return w;
  };
  // Reads one chunk reply; the first refusal is kept.
  auto read_one = [&](Timeouts::duration timeout) -> net::awaitable<Got> {
    Got r = in_step(co_await s.read_reply(timeout));
    if (r.ok()) {
      --unread;
      if (r.reply.code / 100 != 2 && !refused) refused = r.reply.to_reply();
    }
    co_return r;
  };

  for (;;) {
    auto n = tx.read_body ? tx.read_body(chunk.data(), chunk.size()) : base::Result<std::size_t>(std::size_t{0});
    if (!n) {
      read_failed = true;
      got.kind = Got::kProtocol;
      got.detail = n.error().message;
      co_return got;
    }
    if (*n == 0) break;
    encoder.encode(std::string_view(chunk.data(), *n), out);
    if (out.size() < kWriteChunk) continue;
    got = co_await send_chunk(false);
    if (!got.ok()) co_return got;
    while (unread > (pipelined ? kMaxUnread : 0)) {
      got = co_await read_one(t.data_block);
      if (!got.ok()) co_return got;
    }
    if (refused) break;
  }
  if (!refused) {
    encoder.finish(out);
    got = co_await send_chunk(true);
    if (!got.ok()) co_return got;
    last_sent = true;
  }
  // RFC 5321 4.5.3.2.6 applies to the reply to the last chunk as to the final dot.
  while (unread > 0) {
    got = co_await read_one(unread == 1 && last_sent ? t.data_done : t.data_block);
    if (!got.ok()) co_return got;
  }
  co_return got;
}

}  // namespace

namespace {
// True when the envelope as sent (the sender, these recipients and their ORCPTs) has a
// non-ASCII octet.
bool needs_smtputf8(const mail::Envelope& env, const std::vector<std::uint32_t>& recipients) {
  auto utf8 = [](std::string_view text) {
    return std::any_of(text.begin(), text.end(), [](char c) { return static_cast<unsigned char>(c) >= 0x80; });
  };
  if (env.sender.has_utf8()) return true;
  for (auto index : recipients) {
    const mail::Recipient& r = env.recipients[index];
    if (r.address.has_utf8() || utf8(r.orcpt)) return true;
  }
  return false;
}
}  // namespace

net::awaitable<TransactionResult> Session::send(const Transaction& tx) {
  State& s = *state_;
  const auto& t = s.options.timeouts;
  Outcome out(tx);
  const mail::Envelope& env = *tx.envelope;
  for (auto index : tx.recipients) PETREL_ASSERT(index < env.recipients.size(), "recipient index out of range");

  // Refusals that need no conversation: the connection stays as it is.
  if (tx.recipients.empty()) co_return out.done(s.usable);
  if (!s.usable) {
    co_return out.all(mail::reply(421, "4.4.2", "connection to " + s.peer() + " is not usable"), false);
  }
  if (env.smtputf8 && !s.caps.smtputf8 && (tx.header_utf8 || needs_smtputf8(env, tx.recipients))) {
    // RFC 6531 3.2: a message that needs SMTPUTF8 (UTF-8 in its envelope or header) must not go
    // to a server without it. One whose client merely said SMTPUTF8 (many do whenever it is
    // offered) but that is all ASCII goes without it, as Postfix does: bouncing it helps nobody.
    co_return out.all(mail::reply(553, "5.6.7", s.peer() + " does not support SMTPUTF8"), true);
  }
  if (s.caps.size && s.caps.size_limit > 0 && tx.body_size > s.caps.size_limit) {
    // RFC 1870 6: do not send a message the server said it will not take.
    co_return out.all(mail::reply(552, "5.3.4", fmt::format("message size {} exceeds the fixed limit {} of {}",
                                                            tx.body_size, s.caps.size_limit, s.peer())),
                      true);
  }
  auto mail_line = mail_from_line(env, tx.body_size, s.caps);
  std::vector<std::string> rcpt_lines;
  rcpt_lines.reserve(tx.recipients.size());
  bool bad = !mail_line;
  for (auto index : tx.recipients) {
    if (bad) break;
    auto line = rcpt_to_line(env.recipients[index], s.caps);
    if (!line) {
      bad = true;
      break;
    }
    rcpt_lines.push_back(std::move(*line));
  }
  if (bad) co_return out.all(mail::reply(451, "4.5.2", "CR, LF or NUL in the envelope; not sent"), true);

  const bool reused = s.transactions > 0;
  ++s.transactions;

  // Commands: with PIPELINING, [RSET] MAIL, every RCPT and DATA go in one write (RFC 2920 3.1);
  // replies then come back in order. Without it, one command and its reply at a time.
  const bool pipelined = s.caps.pipelining;
  const bool chunking = s.caps.chunking && s.options.use_chunking;
  std::string group;
  if (reused) group += "RSET\r\n";
  Got got;
  if (pipelined) {
    group += *mail_line;
    for (const auto& line : rcpt_lines) group += line;
    if (!chunking) group += "DATA\r\n";  // BDAT waits for the RCPT replies: no body for nobody
    got = co_await s.write(group, t.mail);
    if (!got.ok()) co_return broken(s, out, got, "while sending MAIL");
  }
  auto step = [&](std::string_view line, Timeouts::duration timeout) -> net::awaitable<Got> {
    if (!pipelined) {
      Got w = co_await s.write(line, timeout);
      if (!w.ok()) co_return w;
    }
    co_return co_await s.read_reply(timeout);
  };

  // RSET (RFC 5321 4.1.1.5) clears whatever an earlier transaction left behind.
  if (reused) {
    got = in_step(co_await step("RSET\r\n", t.rset));
    if (!got.ok()) co_return broken(s, out, got, "while receiving the reply to RSET");
    if (got.reply.code / 100 != 2) {
      // Typically a "421 idle timeout" the server sent while the connection sat unused: the
      // connection is gone, nothing was delivered, and a new connection may do better.
      Got gone;
      gone.kind = Got::kLost;
      gone.detail = fmt::format("RSET answered {} {}", got.reply.code, got.reply.to_reply().text);
      co_return broken(s, out, gone, "on reusing the connection");
    }
  }

  // MAIL: a refusal answers for everyone. With pipelining the RCPT and DATA replies still come.
  got = in_step(co_await step(*mail_line, t.mail));
  if (!got.ok()) co_return broken(s, out, got, "while receiving the reply to MAIL FROM");
  bool mail_ok = got.reply.code / 100 == 2;
  if (!mail_ok) out.finish_open(got.reply.to_reply(), true);
  if (closes(got)) {
    s.close();
    co_return out.done(false);
  }
  if (!mail_ok && !pipelined) co_return out.done(true);

  // RCPT, one reply per recipient, in order.
  for (std::size_t i = 0; i < rcpt_lines.size(); ++i) {
    got = in_step(co_await step(rcpt_lines[i], t.rcpt));
    if (!got.ok()) co_return broken(s, out, got, "while receiving the reply to RCPT TO");
    if (mail_ok) out.rcpt(i, got.reply.to_reply());
    if (closes(got)) {
      out.finish_open(got.reply.to_reply(), true);
      s.close();
      co_return out.done(false);
    }
  }
  const bool any = out.accepted_count() > 0;
  if (!any && (!pipelined || chunking)) co_return out.done(true);  // nothing to send, nor sent

  // CHUNKING: the body in BDAT chunks; the last chunk's reply (or the first refusal) answers.
  if (chunking) {
    bool read_failed = false;
    std::optional<mail::Reply> refused;
    got = co_await send_bdat(s, tx, pipelined, read_failed, refused);
    if (read_failed) {
      s.close();
      out.finish_open(mail::reply(451, "4.3.0", "cannot read the queued message"), false);
      PETREL_LOG(kWarn, "smtp.client.body_read_failed", "peer={} error={}", s.peer(), base::log_escape(got.detail));
      co_return out.done(false);
    }
    if (!got.ok()) co_return broken(s, out, got, "while sending the message in BDAT chunks");
    mail::Reply final = refused ? *refused : got.reply.to_reply();
    out.finish_open(final, true);
    if (final.code == 421 || closes(got)) s.close();
    co_return out.done(s.usable);
  }

  // DATA: 354, or a refusal for every accepted recipient.
  got = co_await step("DATA\r\n", t.data_init);
  if (!got.ok()) co_return broken(s, out, got, "while receiving the reply to DATA");
  if (got.reply.code != 354) {
    if (got.reply.code / 100 == 2 || got.reply.code / 100 == 3) {  // neither 354 nor a refusal
      Got odd;
      odd.kind = Got::kProtocol;
      odd.detail = fmt::format("DATA answered {}", got.reply.code);
      co_return broken(s, out, odd, "after DATA");
    }
    out.finish_open(got.reply.to_reply(), true);
    if (closes(got)) s.close();
    co_return out.done(s.usable);
  }

  // The body, or, when every RCPT was refused but the pipelined DATA still got 354, an empty
  // message the server must refuse (RFC 2920 3.1 leaves the choice; this keeps the connection).
  if (!any) {
    got = co_await s.write(".\r\n", t.data_block);
    if (got.ok()) got = in_step(co_await s.read_reply(t.data_done));
    if (!got.ok() || closes(got)) co_return broken(s, out, got, "after an empty DATA");
    co_return out.done(true);
  }
  bool read_failed = false;
  got = co_await send_body(s, tx, read_failed);
  if (read_failed) {
    s.close();
    out.finish_open(mail::reply(451, "4.3.0", "cannot read the queued message"), false);
    PETREL_LOG(kWarn, "smtp.client.body_read_failed", "peer={} error={}", s.peer(), base::log_escape(got.detail));
    co_return out.done(false);
  }
  if (!got.ok()) co_return broken(s, out, got, "while sending the message body");

  // RFC 5321 4.5.3.2.6: up to 10 minutes for the final reply. Silence here may mean the message
  // was delivered (RFC 1047); it is still only a temporary failure.
  got = in_step(co_await s.read_reply(t.data_done));
  if (!got.ok()) co_return broken(s, out, got, "while receiving the reply to the end of data");
  out.finish_open(got.reply.to_reply(), true);
  if (closes(got)) s.close();
  co_return out.done(s.usable);
}

}  // namespace petrel::smtp::client
