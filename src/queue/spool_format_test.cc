#include "queue/spool_format.h"

#include <gtest/gtest.h>

#include "base/ids.h"
#include "queue/spool_test_util.h"

namespace petrel::queue::format {
namespace {

using testing::expect_same;
using testing::sample_envelope;

std::string id() { return base::new_queue_id(std::chrono::system_clock::now()); }

// Table of envelopes whose content a careless encoder would mangle.
std::vector<std::pair<std::string, mail::Envelope>> odd_envelopes() {
  std::vector<std::pair<std::string, mail::Envelope>> v;
  v.emplace_back("plain", sample_envelope());
  auto e = sample_envelope();
  e.sender = {};  // "<>"
  v.emplace_back("null sender", e);
  e = sample_envelope();
  e.sender.local = std::string("a\0b", 3);
  e.helo = "x\r\ny\r\n.\r\n";
  e.envid = std::string("\0\0\0", 3);
  v.emplace_back("NUL and CRLF", e);
  e = sample_envelope();
  e.smtputf8 = true;
  e.sender = {"\xc3\xa9l\xc3\xa8ve", "\xe4\xbe\x8b\xe3\x81\x88.jp"};
  e.recipients[0].orcpt_type = "utf-8";
  e.recipients[0].orcpt = "\xf0\x9f\x93\xa7@example";
  v.emplace_back("UTF-8", e);
  e = sample_envelope(1000);
  e.auth_user = "bob";
  e.received_at = -1;
  e.declared_size = ~0ULL;
  v.emplace_back("1000 recipients", e);
  e = sample_envelope(0);
  v.emplace_back("no recipients", e);
  return v;
}

TEST(SpoolFormat, MessageRoundTrip) {
  for (auto& [name, env] : odd_envelopes()) {
    SCOPED_TRACE(name);
    std::string qid = id();
    std::string body = std::string("Subject: x\r\n\r\nhello\0world\r\n", 27);
    BodyRef ref{BodyKind::kInline, body.size(), crc32(0, body)};
    std::string payload;
    ASSERT_TRUE(encode_message(qid, env, ref, body, payload));
    auto m = decode_message(payload);
    ASSERT_TRUE(m) << m.error().message;
    EXPECT_EQ(m->id, qid);
    expect_same(env, m->envelope);
    EXPECT_EQ(m->body.kind, BodyKind::kInline);
    EXPECT_EQ(m->body.length, body.size());
    EXPECT_EQ(m->body.crc, ref.crc);
    EXPECT_EQ(payload.substr(m->inline_offset), body);
  }
}

TEST(SpoolFormat, SpillReferenceRoundTrip) {
  std::string qid = id();
  BodyRef ref{BodyKind::kSpill, 5u << 20, 0xdeadbeef};
  std::string payload;
  ASSERT_TRUE(encode_message(qid, sample_envelope(), ref, {}, payload));
  auto m = decode_message(payload);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->body.kind, BodyKind::kSpill);
  EXPECT_EQ(m->body.length, 5u << 20);
  EXPECT_EQ(m->body.crc, 0xdeadbeefu);
}

TEST(SpoolFormat, EveryTruncationAndTrailingByteIsRejected) {
  std::string payload;
  std::string body = "hi";
  ASSERT_TRUE(encode_message(id(), sample_envelope(3), {BodyKind::kInline, 2, crc32(0, body)}, body, payload));
  for (std::size_t n = 0; n < payload.size(); ++n) EXPECT_FALSE(decode_message(payload.substr(0, n))) << n;
  EXPECT_FALSE(decode_message(payload + "x"));
}

TEST(SpoolFormat, HostileLengthsAreRejectedWithoutAllocating) {
  // version, then an id length of 4 GiB - 1 with nothing behind it.
  std::string p = std::string("\x01\xff\xff\xff\xff", 5);
  EXPECT_FALSE(decode_message(p));
  // A valid prefix claiming a huge recipient count.
  std::string payload;
  ASSERT_TRUE(encode_message(id(), sample_envelope(0), {BodyKind::kSpill, 0, 0}, {}, payload));
  // The count sits just before the 13-byte body reference.
  std::size_t count_at = payload.size() - 13 - 4;
  payload.replace(count_at, 4, "\xff\xff\xff\x7f");
  EXPECT_FALSE(decode_message(payload));
}

TEST(SpoolFormat, BadQueueIdIsRejected) {
  std::string payload;
  ASSERT_TRUE(encode_message(id(), sample_envelope(), {BodyKind::kSpill, 0, 0}, {}, payload));
  payload[5] = '/';  // first byte of the id: would make a path
  EXPECT_FALSE(decode_message(payload));
}

TEST(SpoolFormat, RecordHeaderAndCrc) {
  std::string out;
  encode_record(42, RecordType::kMessage, "payload", out);
  ASSERT_EQ(out.size(), kRecordHeaderSize + 7);
  auto h = decode_record_header(out);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->type, 1);
  EXPECT_EQ(h->length, 7u);
  EXPECT_TRUE(record_crc_ok(42, out, out.substr(kRecordHeaderSize), h->crc));
  EXPECT_FALSE(record_crc_ok(43, out, out.substr(kRecordHeaderSize), h->crc)) << "the salt is part of the CRC";
  EXPECT_FALSE(record_crc_ok(42, out, "paylOad", h->crc));

  // The split form (payload CRC computed elsewhere) gives the same bytes.
  auto hb = encode_record_header(42, RecordType::kMessage, 7, crc32(0, "payload"));
  EXPECT_EQ(std::string(hb.data(), hb.size()), out.substr(0, kRecordHeaderSize));

  std::string bad = out;
  bad[0] = 'X';
  EXPECT_FALSE(decode_record_header(bad));
  bad = out;
  bad[11] = '\x7f';  // length far over the bound
  EXPECT_FALSE(decode_record_header(bad));
}

TEST(SpoolFormat, SegmentHeader) {
  auto h = encode_segment_header({7, 0x1122334455667788ULL});
  auto d = decode_segment_header(std::string_view(h.data(), h.size()));
  ASSERT_TRUE(d);
  EXPECT_EQ(d->sequence, 7u);
  EXPECT_EQ(d->salt, 0x1122334455667788ULL);
  for (std::size_t i = 0; i < h.size(); ++i) {
    auto c = h;
    c[i] ^= 1;
    EXPECT_FALSE(decode_segment_header(std::string_view(c.data(), c.size()))) << i;
  }
  EXPECT_FALSE(decode_segment_header(std::string_view(h.data(), h.size() - 1)));
}

TEST(SpoolFormat, TooManyRecipientsIsAnErrorNotACrash) {
  auto e = sample_envelope(0);
  e.recipients.resize(kMaxRecipients + 1);
  std::string payload;
  EXPECT_FALSE(encode_message(id(), e, {BodyKind::kSpill, 0, 0}, {}, payload));
}

// ---- RECIPIENT_STATE ----

std::vector<RecipientState> sample_states() {
  std::vector<RecipientState> v;
  RecipientState d;
  d.id = id();
  d.recipient = 0;
  d.status = RecipientStatus::kDelivered;
  d.attempts = 1;
  d.reply_code = 250;
  d.enhanced = "2.0.0";
  d.text = "ok";
  v.push_back(d);
  RecipientState q = d;
  q.recipient = 99999;
  q.status = RecipientStatus::kDeferred;
  q.attempts = 7;
  q.next_attempt = 1767229200;
  q.reply_code = 452;
  q.enhanced = "4.2.2";
  q.text = std::string("mailbox\0 full\r\n", 15);
  q.remote_host = "mx.example.net";
  v.push_back(q);
  RecipientState f = d;
  f.status = RecipientStatus::kFailed;
  f.reply_code = 0;
  f.enhanced = "";
  f.text = "";
  v.push_back(f);
  RecipientState x = f;
  x.status = RecipientStatus::kExpired;
  x.attempts = ~0u;
  x.next_attempt = -1;
  v.push_back(x);
  return v;
}

TEST(SpoolFormat, StateRoundTrip) {
  for (const auto& st : sample_states()) {
    std::string payload;
    ASSERT_TRUE(encode_state(st, payload));
    auto d = decode_state(payload);
    ASSERT_TRUE(d) << d.error().message;
    EXPECT_EQ(*d, st);
    std::string again;
    ASSERT_TRUE(encode_state(*d, again));
    EXPECT_EQ(again, payload);
  }
}

TEST(SpoolFormat, StateLayoutIsTheDocumentedOne) {
  RecipientState st;
  st.id = "0123456789ABCDEFGHJK";
  st.recipient = 3;
  st.status = RecipientStatus::kDeferred;
  st.attempts = 2;
  st.next_attempt = 0x0102030405060708;
  st.reply_code = 451;
  st.enhanced = "4.3.0";
  st.text = "t";
  st.remote_host = "";
  std::string payload;
  ASSERT_TRUE(encode_state(st, payload));
  std::string expect = std::string("\x01\x14\0\0\0", 5) + st.id + std::string("\x03\0\0\0\x02\x02\0\0\0", 9) +
                       std::string("\x08\x07\x06\x05\x04\x03\x02\x01\xc3\x01", 10) + std::string("\x05\0\0\0", 4) +
                       "4.3.0" + std::string("\x01\0\0\0", 4) + "t" + std::string("\0\0\0\0", 4);
  EXPECT_EQ(payload, expect);
}

TEST(SpoolFormat, StateFlagsMakeVersion2WithOneEncoding) {
  RecipientState st = sample_states()[1];
  st.flags = 0;
  std::string v1;
  ASSERT_TRUE(encode_state(st, v1));
  EXPECT_EQ(v1[0], '\x01') << "no flag: still version 1";
  st.flags = kStateFlagDelayNotified;
  std::string v2;
  ASSERT_TRUE(encode_state(st, v2));
  EXPECT_EQ(v2[0], '\x02');
  EXPECT_EQ(v2.substr(1), v1.substr(1) + "\x01") << "version 2 is version 1 plus the flags octet";
  auto d = decode_state(v2);
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_EQ(*d, st);
  // Version 2 without a flag, with an unknown flag, or with the octet missing: invalid.
  EXPECT_FALSE(decode_state(v2.substr(0, v2.size() - 1)));
  std::string zero = v2;
  zero.back() = '\0';
  EXPECT_FALSE(decode_state(zero));
  std::string unknown = v2;
  unknown.back() = '\x08';
  EXPECT_FALSE(decode_state(unknown));
  // The handoff flags of a DELIVERED state round-trip too.
  st.flags = kStateFlagDsnPassedOn | kStateFlagRelayed;
  std::string handoff;
  ASSERT_TRUE(encode_state(st, handoff));
  auto h = decode_state(handoff);
  ASSERT_TRUE(h) << h.error().message;
  EXPECT_EQ(h->flags, kStateFlagDsnPassedOn | kStateFlagRelayed);
  EXPECT_FALSE(decode_state(v1 + "\x01")) << "version 1 has nothing after the host";
}

TEST(SpoolFormat, StateTruncationsAndBadValuesAreRejected) {
  std::string payload;
  ASSERT_TRUE(encode_state(sample_states()[1], payload));
  for (std::size_t n = 0; n < payload.size(); ++n) EXPECT_FALSE(decode_state(payload.substr(0, n))) << n;
  EXPECT_FALSE(decode_state(payload + "x"));
  const std::size_t status_at = 1 + 4 + 20 + 4;
  for (char bad_status : {'\0', '\x07', '\xff'}) {
    std::string p = payload;
    p[status_at] = bad_status;
    EXPECT_FALSE(decode_state(p)) << int(bad_status);
  }
  std::string p = payload;
  p[status_at + 1 + 4 + 8] = '\x01';  // reply code 1: out of range
  p[status_at + 1 + 4 + 8 + 1] = '\0';
  EXPECT_FALSE(decode_state(p));
  p = payload;
  p[0] = 2;  // version
  EXPECT_FALSE(decode_state(p));
  p = payload;
  p[5] = '/';  // queue id
  EXPECT_FALSE(decode_state(p));
  // A MESSAGE payload is not a state, and the other way round.
  EXPECT_FALSE(decode_message(payload));
}

}  // namespace
}  // namespace petrel::queue::format
