// cmd_data.cc: DATA (RFC 5321 4.1.1.4) and BDAT (RFC 3030): message octets stream into the
// queue's MessageWriter; the final reply waits for the durable commit.
#include <ctime>

#include "base/log.h"
#include "base/strings.h"
#include "mail/headers.h"
#include "smtp/server/session.h"

namespace petrel::smtp::server {

namespace {

// MessageWriter::commit() as an awaitable: the completion comes from the queue's commit
// thread and is re-posted to the session's executor, so the session never runs elsewhere.
net::awaitable<base::Status> async_commit(queue::MessageWriter& writer) {
  return net::asio::async_initiate<const net::asio::use_awaitable_t<>&, void(base::Status)>(
      [&writer](auto handler) {
        auto ex = net::asio::get_associated_executor(handler);
        auto shared = std::make_shared<decltype(handler)>(std::move(handler));
        writer.commit([shared, ex](base::Status status) {
          net::asio::post(ex, [shared, status = std::move(status)]() mutable { (*shared)(std::move(status)); });
        });
      },
      net::asio::use_awaitable);
}

}  // namespace

Session::Next Session::handle_data(std::string_view args) {
  if (!args.empty()) {
    send(501, "5.5.4", "Syntax: DATA");
    return count_error() ? Next::kClose : Next::kContinue;
  }
  // RFC 2920 3.1: DATA ends a pipelined group; the client must wait for 354. Octets already
  // here were sent blind and could be commands smuggled as content or content read as commands.
  if (in_.size() > 0) {
    send(554, "5.5.0", "Protocol error: message content sent before the 354 reply");
    return Next::kClose;
  }
  if (auto err = begin_message()) {
    send(*err);
    reset_transaction();
    return Next::kContinue;
  }
  send(354, "", "End data with <CR><LF>.<CR><LF>");
  return Next::kData;
}

Session::Next Session::handle_bdat(std::string_view args) {
  std::uint64_t size = 0;
  bool last = false;
  if (auto err = mail::parse_bdat(args, size, last)) {
    // Without a valid size we cannot tell where the chunk ends: the stream is lost.
    send(*err);
    return Next::kClose;
  }
  if (!esmtp_) {
    send(503, "5.5.1", "Send EHLO before BDAT");
    return Next::kClose;
  }
  // RFC 3030 2: the chunk's octets are always read, even when the command is refused, so the
  // byte count stays exact; the refusal is the reply after the chunk.
  chunk_left_ = size;
  chunk_last_ = last;
  chunk_refusal_.reset();
  if (state_ == State::kRcpt) {
    if (auto err = begin_message()) {
      chunk_refusal_ = std::move(err);
      reset_transaction();
    } else {
      state_ = State::kChunking;
    }
  } else if (state_ != State::kChunking) {
    chunk_refusal_ = mail::reply(503, "5.5.1", state_ == State::kConnected ? "Send EHLO first"
                                                                           : "Need MAIL and RCPT before BDAT");
  }
  return Next::kBdat;
}

std::optional<mail::Reply> Session::begin_message() {
  tx_.envelope.received_at = std::chrono::duration_cast<std::chrono::seconds>(
                                 std::chrono::system_clock::now().time_since_epoch()).count();
  auto writer = ctx_.intake.begin(tx_.envelope);
  if (!writer) {
    PETREL_LOG(kError, "smtp.queue_error", "session={} error=\"{}\"", session_id_, base::log_escape(writer.error().message));
    return mail::reply(451, "4.3.0", "Requested action aborted: local problem in processing");
  }
  tx_.writer = std::move(writer).value();
  // Fields policy added go above our Received: (policy/README.md "Headers"), then the trace.
  std::string top;
  for (const auto* fields : {&connect_headers_, &helo_headers_, &tx_.policy_headers}) {
    for (const auto& f : *fields) top += f + "\r\n";
  }
  top += received_header(tx_.writer->id());
  if (auto s = tx_.writer->append(top); !s) tx_.storage_failed = true;
  tx_.submitted = !auth_user_.empty();
  return std::nullopt;
}

void Session::absorb(std::string_view octets) {
  if (octets.empty()) return;
  tx_.size += octets.size();
  tx_.scanner.scan(octets);
  if (tx_.size > limits_.max_message_size) {
    // RFC 1870 6.1: keep reading to the end, store nothing more, refuse with 552 then.
    tx_.oversize = true;
    return;
  }
  // Submissions: the header section waits (bounded) until it can be checked.
  if (tx_.submitted && !tx_.header.done()) {
    octets = tx_.header.feed(octets);
    if (!tx_.header.done()) return;
    check_submitted_header();
  }
  store(octets);
}

// RFC 6409 8: a submission server may add what a message lacks. We add Date: and Message-ID:
// above the client's header section (trace-field order aside, RFC 5322 3.6 does not order
// fields), so every octet the client sent is stored as sent. RFC 5322 3.6.2: one From: field;
// whether the account owns each of its addresses (RFC 6409 6.1) is policy's question at the end
// of data ("submitted_from"), asked with the addresses parsed here.
void Session::check_submitted_header() {
  if (tx_.header.too_large()) {
    tx_.header_refusal = mail::reply(552, "5.3.4", "Message header section too large");
    return;
  }
  auto facts = analyze_header(tx_.header.header());
  if (facts.from_fields > 1) {
    tx_.header_refusal = mail::reply(554, "5.6.0", "Message has more than one From: field");
    return;
  }
  if (facts.from_fields == 1) {
    auto addresses = mail::parse_mailbox_list(facts.from_values.front());
    if (!addresses) {
      tx_.header_refusal = mail::reply(554, "5.6.0", "Cannot parse the From: field");
      return;
    }
    tx_.header_from = std::move(*addresses);
  } else {
    tx_.header_from.emplace();  // no From: field: nothing to own
  }
  std::string added;
  if (!facts.has_date) added += mail::date_field(tx_.envelope.received_at);
  // The queue id is unique on this host (base/ids.h: time, process, counter).
  if (!facts.has_message_id && tx_.writer) {
    added += mail::message_id_field(tx_.writer->id(), ctx_.config.server.hostname);
  }
  store(added);
  store(tx_.header.held());
}

void Session::store(std::string_view octets) {
  if (octets.empty() || tx_.storage_failed || !tx_.writer) return;
  if (auto s = tx_.writer->append(octets); !s) {
    PETREL_LOG(kError, "smtp.queue_error", "session={} id={} error=\"{}\"", session_id_, tx_.writer->id(),
               base::log_escape(s.error().message));
    tx_.storage_failed = true;
  }
}

net::awaitable<bool> Session::receive_data() {
  if (!co_await flush()) co_return false;
  while (true) {
    if (in_.size() == 0 && !co_await read_more(limits_.data_timeout)) {
      reset_transaction();
      co_return false;
    }
    scratch_.clear();
    auto step = tx_.decoder.feed(in_.unread(), scratch_);
    in_.consume(step.consumed);
    absorb(scratch_);
    if (step.done) break;
  }
  if (scratch_.capacity() > 2 * in_.capacity()) scratch_.shrink_to_fit();
  co_await finish_message();
  co_return true;
}

net::awaitable<bool> Session::receive_bdat_chunk() {
  while (chunk_left_ > 0) {
    if (in_.size() == 0 && !co_await read_more(limits_.data_timeout)) {
      reset_transaction();
      co_return false;
    }
    auto take = static_cast<std::size_t>(std::min<std::uint64_t>(chunk_left_, in_.size()));
    if (!chunk_refusal_) absorb(in_.unread().substr(0, take));
    in_.consume(take);
    chunk_left_ -= take;
  }
  if (chunk_refusal_) {
    send(*chunk_refusal_);
    chunk_refusal_.reset();
    co_return !count_error();
  }
  if (chunk_last_) {
    co_await finish_message();
  } else if (tx_.oversize) {
    send(552, "5.3.4", "Message size exceeds fixed maximum message size");
    reset_transaction();
  } else {
    send(250, "2.0.0", std::to_string(tx_.size) + " octets received");
  }
  co_return true;
}

net::awaitable<void> Session::finish_message() {
  tx_.scanner.finish();
  if (tx_.submitted && !tx_.header.done() && !tx_.oversize) {
    // The message ended inside its header section (no body): all of it is header.
    tx_.header.finish();
    check_submitted_header();
  }
  std::optional<mail::Reply> refusal;
  if (tx_.oversize) {
    refusal = mail::reply(552, "5.3.4", "Message size exceeds fixed maximum message size");
  } else if (tx_.scanner.bare_line_end()) {
    // RFC 5321 2.3.8: CR and LF only as CRLF. Refusing (not repairing) keeps every reading of
    // the message the same downstream: the basis of SMTP smuggling is a second reading.
    refusal = mail::reply(554, "5.6.0", "Message contains bare CR or LF characters");
  } else if (tx_.scanner.has_nul()) {
    refusal = mail::reply(554, "5.6.0", "Message contains NUL characters");
  } else if (tx_.scanner.received_headers() > limits_.max_received_headers) {
    // RFC 5321 6.3: a message that has gone round too often is in a loop.
    refusal = mail::reply(554, "5.4.0", "Too many hops (Received: headers), mail loop?");
  } else if (tx_.header_refusal) {
    refusal = tx_.header_refusal;
  } else {
    // Policy at the end of data, before the storage verdict as the From: check always was.
    auto context = policy_context(policy::Stage::kData);
    auto decision = co_await await_policy(context);
    if (decision.kind != policy::Decision::Kind::kAccept) {
      refusal = std::move(decision.reply);
    } else if (tx_.storage_failed) {
      refusal = mail::reply(451, "4.3.0", "Requested action aborted: local problem in processing");
    }
  }
  if (refusal) {
    send(*refusal);
    reset_transaction();
    co_return;
  }

  // The durable commit: only its success may be answered with 250.
  auto status = co_await async_commit(*tx_.writer);
  if (!status) {
    PETREL_LOG(kError, "smtp.queue_error", "session={} id={} error=\"{}\"", session_id_, tx_.writer->id(),
               base::log_escape(status.error().message));
    send(451, "4.3.0", "Requested action aborted: local problem in processing");
    reset_transaction();
    co_return;
  }
  ++messages_;
  PETREL_LOG(kInfo, "smtp.queued", "session={} id={} client={} from=<{}> nrcpt={} size={}", session_id_,
             tx_.writer->id(), client_ip_, base::log_escape(tx_.envelope.sender.str()),
             tx_.envelope.recipients.size(), tx_.size);
  send(250, "2.0.0", "Ok: queued as " + tx_.writer->id());
  tx_.writer.reset();  // committed: nothing to abort
  reset_transaction();
}

std::string Session::received_header(const std::string& queue_id) const {
  // RFC 5321 4.4 (mail/headers.h): the recipient is named only when there is one.
  const bool tls = stream_.is_tls();
  const std::string proto =
      mail::received_protocol(esmtp_, tx_.envelope.smtputf8, tls, !tx_.envelope.auth_user.empty());
  const std::string tls_text = tls ? stream_.tls_description() : std::string();
  const std::string rcpt = tx_.envelope.recipients.size() == 1 ? tx_.envelope.recipients.front().address.str() : "";
  return mail::received_field({.helo = helo_,
                               .ip = client_ip_,
                               .tls = tls_text,
                               .by = ctx_.config.server.hostname,
                               .by_comment = "Petrel",
                               .with = proto,
                               .id = queue_id,
                               .for_rcpt = rcpt,
                               .at = tx_.envelope.received_at});
}

}  // namespace petrel::smtp::server
