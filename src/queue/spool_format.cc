// spool_format.cc: encoding and bounded decoding of segment headers, records, MESSAGE and
// RECIPIENT_STATE payloads. Everything little-endian; layout in queue/README.md.
#include "queue/spool_format.h"

#include <zlib.h>

#include <cstring>
#include <limits>

#include "base/ids.h"

namespace petrel::queue::format {
namespace {

// ---- little-endian helpers ----

void put_u8(std::string& out, std::uint8_t v) { out.push_back(static_cast<char>(v)); }

template <typename T>
void put_le(std::string& out, T v) {
  for (std::size_t i = 0; i < sizeof(T); ++i) out.push_back(static_cast<char>((static_cast<std::uint64_t>(v) >> (8 * i)) & 0xff));
}

template <typename T>
void store_le(char* p, T v) {
  for (std::size_t i = 0; i < sizeof(T); ++i) p[i] = static_cast<char>((static_cast<std::uint64_t>(v) >> (8 * i)) & 0xff);
}

template <typename T>
T load_le(const char* p) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i) v |= static_cast<std::uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  return static_cast<T>(v);
}

bool put_str(std::string& out, std::string_view s) {
  if (s.size() > std::numeric_limits<std::uint32_t>::max()) return false;
  put_le<std::uint32_t>(out, static_cast<std::uint32_t>(s.size()));
  out.append(s);
  return true;
}

// A cursor over a payload: every read checks what is left first, so a hostile length can
// neither read out of bounds nor make us allocate more than the payload holds.
class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}

  bool u8(std::uint8_t& v) {
    if (left() < 1) return fail();
    v = static_cast<std::uint8_t>(data_[pos_++]);
    return true;
  }
  template <typename T>
  bool le(T& v) {
    if (left() < sizeof(T)) return fail();
    v = load_le<T>(data_.data() + pos_);
    pos_ += sizeof(T);
    return true;
  }
  bool str(std::string& s) {
    std::uint32_t n = 0;
    if (!le(n) || left() < n) return fail();
    s.assign(data_.data() + pos_, n);
    pos_ += n;
    return true;
  }
  bool skip(std::uint64_t n) {
    if (left() < n) return fail();
    pos_ += static_cast<std::size_t>(n);
    return true;
  }
  std::size_t left() const { return data_.size() - pos_; }
  std::size_t pos() const { return pos_; }
  bool ok() const { return ok_; }

 private:
  bool fail() {
    ok_ = false;
    return false;
  }
  std::string_view data_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

base::Error bad(const char* what) { return base::temporary_error(std::string("spool record: ") + what); }

// The smallest encoding of one recipient: four empty strings and the notify byte.
constexpr std::size_t kMinRecipientSize = 4 * 4 + 1;

}  // namespace

std::uint32_t crc32(std::uint32_t crc, std::string_view data) {
  return static_cast<std::uint32_t>(
      ::crc32_z(crc, reinterpret_cast<const Bytef*>(data.data()), data.size()));
}

// ---- segment header ----

std::array<char, kSegmentHeaderSize> encode_segment_header(const SegmentHeader& header) {
  std::array<char, kSegmentHeaderSize> h{};
  std::memcpy(h.data(), kSegmentMagic.data(), kSegmentMagic.size());
  store_le<std::uint32_t>(h.data() + 8, kSegmentVersion);
  store_le<std::uint32_t>(h.data() + 12, static_cast<std::uint32_t>(kSegmentHeaderSize));
  store_le<std::uint64_t>(h.data() + 16, header.sequence);
  store_le<std::uint64_t>(h.data() + 24, header.salt);
  store_le<std::uint32_t>(h.data() + 32, crc32(0, std::string_view(h.data(), 32)));
  // bytes 36..39 reserved, zero
  return h;
}

base::Result<SegmentHeader> decode_segment_header(std::string_view bytes) {
  if (bytes.size() < kSegmentHeaderSize) return bad("segment header truncated");
  if (bytes.substr(0, 8) != kSegmentMagic) return bad("segment magic mismatch");
  if (load_le<std::uint32_t>(bytes.data() + 8) != kSegmentVersion) return bad("unsupported segment version");
  if (load_le<std::uint32_t>(bytes.data() + 12) != kSegmentHeaderSize) return bad("segment header size mismatch");
  if (load_le<std::uint32_t>(bytes.data() + 32) != crc32(0, bytes.substr(0, 32))) return bad("segment header CRC mismatch");
  if (load_le<std::uint32_t>(bytes.data() + 36) != 0) return bad("segment reserved bytes not zero");
  return SegmentHeader{load_le<std::uint64_t>(bytes.data() + 16), load_le<std::uint64_t>(bytes.data() + 24)};
}

// ---- record header ----

base::Result<RecordHeader> decode_record_header(std::string_view bytes) {
  if (bytes.size() < kRecordHeaderSize) return bad("record header truncated");
  if (bytes.substr(0, 4) != kRecordMagic) return bad("record magic mismatch");
  RecordHeader h;
  h.type = static_cast<std::uint8_t>(bytes[4]);
  h.flags = static_cast<std::uint8_t>(bytes[5]);
  if (bytes[6] != 0 || bytes[7] != 0) return bad("record reserved bytes not zero");
  h.length = load_le<std::uint32_t>(bytes.data() + 8);
  h.crc = load_le<std::uint32_t>(bytes.data() + 12);
  if (h.type == 0) return bad("record type 0");
  if (h.length > kMaxRecordPayload) return bad("record payload too long");
  return h;
}

namespace {
std::uint32_t record_crc(std::uint64_t salt, std::string_view header12, std::string_view payload) {
  char s[8];
  store_le<std::uint64_t>(s, salt);
  return crc32(crc32(crc32(0, std::string_view(s, 8)), header12), payload);
}
}  // namespace

bool record_crc_ok(std::uint64_t salt, std::string_view header_bytes, std::string_view payload, std::uint32_t crc) {
  if (header_bytes.size() < kRecordHeaderSize) return false;
  return record_crc(salt, header_bytes.substr(0, 12), payload) == crc;
}

bool record_crc_matches(std::uint64_t salt, std::string_view header_bytes, std::uint32_t payload_crc,
                        std::uint64_t length, std::uint32_t crc) {
  if (header_bytes.size() < kRecordHeaderSize) return false;
  char s[8];
  store_le<std::uint64_t>(s, salt);
  std::uint32_t prefix = crc32(crc32(0, std::string_view(s, 8)), header_bytes.substr(0, 12));
  return static_cast<std::uint32_t>(::crc32_combine(prefix, payload_crc, static_cast<z_off_t>(length))) == crc;
}

std::array<char, kRecordHeaderSize> encode_record_header(std::uint64_t salt, RecordType type, std::uint32_t length,
                                                         std::uint32_t payload_crc) {
  PETREL_ASSERT(length <= kMaxRecordPayload, "spool record payload over the format's bound");
  std::array<char, kRecordHeaderSize> h{};
  std::memcpy(h.data(), kRecordMagic.data(), kRecordMagic.size());
  h[4] = static_cast<char>(type);
  h[5] = 0;  // flags: none defined yet
  store_le<std::uint32_t>(h.data() + 8, length);
  char s[8];
  store_le<std::uint64_t>(s, salt);
  std::uint32_t prefix = crc32(crc32(0, std::string_view(s, 8)), std::string_view(h.data(), 12));
  auto crc = static_cast<std::uint32_t>(::crc32_combine(prefix, payload_crc, static_cast<z_off_t>(length)));
  store_le<std::uint32_t>(h.data() + 12, crc);
  return h;
}

void encode_record(std::uint64_t salt, RecordType type, std::string_view payload, std::string& out) {
  PETREL_ASSERT(payload.size() <= kMaxRecordPayload, "spool record payload over the format's bound");
  auto h = encode_record_header(salt, type, static_cast<std::uint32_t>(payload.size()), crc32(0, payload));
  out.append(h.data(), h.size());
  out.append(payload);
}

// ---- MESSAGE payload ----

base::Status encode_message(const std::string& id, const mail::Envelope& e, const BodyRef& body,
                            std::string_view inline_body, std::string& payload) {
  PETREL_ASSERT(base::is_queue_id(id), "encode_message: not a queue id");
  PETREL_ASSERT(body.kind == BodyKind::kInline ? inline_body.size() == body.length : inline_body.empty(),
                "encode_message: inline body does not match its reference");
  if (e.recipients.size() > kMaxRecipients) return bad("too many recipients for one record");
  payload.clear();
  bool ok = true;
  put_u8(payload, kMessageVersion);
  ok &= put_str(payload, id);
  ok &= put_str(payload, e.sender.local);
  ok &= put_str(payload, e.sender.domain);
  put_u8(payload, static_cast<std::uint8_t>(e.body));
  put_u8(payload, e.smtputf8 ? 1 : 0);
  put_u8(payload, static_cast<std::uint8_t>(e.ret));
  ok &= put_str(payload, e.envid);
  put_le<std::uint64_t>(payload, e.declared_size);
  ok &= put_str(payload, e.client_ip);
  ok &= put_str(payload, e.helo);
  ok &= put_str(payload, e.auth_user);
  put_le<std::int64_t>(payload, e.received_at);
  put_le<std::uint32_t>(payload, static_cast<std::uint32_t>(e.recipients.size()));
  for (const auto& r : e.recipients) {
    ok &= put_str(payload, r.address.local);
    ok &= put_str(payload, r.address.domain);
    put_u8(payload, r.notify);
    ok &= put_str(payload, r.orcpt_type);
    ok &= put_str(payload, r.orcpt);
    if (payload.size() > kMaxRecordPayload) break;
  }
  put_u8(payload, static_cast<std::uint8_t>(body.kind));
  put_le<std::uint64_t>(payload, body.length);
  put_le<std::uint32_t>(payload, body.crc);
  payload.append(inline_body);
  if (!ok || payload.size() > kMaxRecordPayload) {
    payload.clear();
    return bad("envelope too large for one record");
  }
  return {};
}

base::Result<MessageRecord> decode_message(std::string_view payload) {
  Reader r(payload);
  MessageRecord m;
  mail::Envelope& e = m.envelope;

  // Header fields, in the order README.md lists them.
  std::uint8_t version = 0, body_type = 0, utf8 = 0, ret = 0;
  if (!r.u8(version)) return bad("message payload empty");
  if (version != kMessageVersion) return bad("unsupported message version");
  if (!r.str(m.id) || !base::is_queue_id(m.id)) return bad("bad queue id");
  if (!r.str(e.sender.local) || !r.str(e.sender.domain)) return bad("bad sender");
  if (!r.u8(body_type) || !r.u8(utf8) || !r.u8(ret)) return bad("truncated flags");
  if (body_type > 2 || utf8 > 1 || ret > 2) return bad("flag out of range");
  e.body = static_cast<mail::BodyType>(body_type);
  e.smtputf8 = utf8 == 1;
  e.ret = static_cast<mail::DsnRet>(ret);
  if (!r.str(e.envid) || !r.le(e.declared_size)) return bad("bad envid/size");
  if (!r.str(e.client_ip) || !r.str(e.helo) || !r.str(e.auth_user) || !r.le(e.received_at)) {
    return bad("bad origin fields");
  }

  // Recipients: the count is checked against the bytes left before anything is reserved.
  std::uint32_t n = 0;
  if (!r.le(n)) return bad("truncated recipient count");
  if (n > kMaxRecipients || n > r.left() / kMinRecipientSize) return bad("recipient count too large");
  e.recipients.resize(n);
  for (auto& rc : e.recipients) {
    if (!r.str(rc.address.local) || !r.str(rc.address.domain) || !r.u8(rc.notify) || !r.str(rc.orcpt_type) ||
        !r.str(rc.orcpt)) {
      return bad("truncated recipient");
    }
    if (rc.notify > 15) return bad("notify out of range");
  }

  // Body reference; an inline body must fill the rest of the payload exactly.
  std::uint8_t kind = 0;
  if (!r.u8(kind) || !r.le(m.body.length) || !r.le(m.body.crc)) return bad("truncated body reference");
  if (kind > 1) return bad("body kind out of range");
  m.body.kind = static_cast<BodyKind>(kind);
  if (m.body.kind == BodyKind::kInline) {
    m.inline_offset = r.pos();
    if (!r.skip(m.body.length)) return bad("inline body truncated");
  }
  if (r.left() != 0) return bad("trailing bytes after message");
  return m;
}

// ---- RECIPIENT_STATE payload ----

base::Status encode_state(const RecipientState& st, std::string& payload) {
  PETREL_ASSERT(base::is_queue_id(st.id), "encode_state: not a queue id");
  payload.clear();
  bool ok = true;
  PETREL_ASSERT((st.flags & ~kStateKnownFlags) == 0, "encode_state: unknown flag");
  put_u8(payload, st.flags != 0 ? kStateVersionFlags : kStateVersion);
  ok &= put_str(payload, st.id);
  put_le<std::uint32_t>(payload, st.recipient);
  put_u8(payload, static_cast<std::uint8_t>(st.status));
  put_le<std::uint32_t>(payload, st.attempts);
  put_le<std::int64_t>(payload, st.next_attempt);
  put_le<std::uint16_t>(payload, st.reply_code);
  ok &= put_str(payload, st.enhanced);
  ok &= put_str(payload, st.text);
  ok &= put_str(payload, st.remote_host);
  if (st.flags != 0) put_u8(payload, st.flags);
  if (!ok || payload.size() > kMaxRecordPayload) {
    payload.clear();
    return bad("recipient state too large for one record");
  }
  return {};
}

base::Result<RecipientState> decode_state(std::string_view payload) {
  Reader r(payload);
  RecipientState st;
  std::uint8_t version = 0, status = 0;
  if (!r.u8(version)) return bad("state payload empty");
  if (version != kStateVersion && version != kStateVersionFlags) return bad("unsupported state version");
  if (!r.str(st.id) || !base::is_queue_id(st.id)) return bad("bad queue id");
  if (!r.le(st.recipient) || !r.u8(status) || !r.le(st.attempts) || !r.le(st.next_attempt) || !r.le(st.reply_code)) {
    return bad("truncated state");
  }
  if (status < 1 || status > 6) return bad("state out of range");
  st.status = static_cast<RecipientStatus>(status);
  if (st.reply_code != 0 && (st.reply_code < 200 || st.reply_code > 599)) return bad("reply code out of range");
  if (!r.str(st.enhanced) || !r.str(st.text) || !r.str(st.remote_host)) return bad("truncated reply");
  if (version == kStateVersionFlags) {
    // Only written with a flag set, and only known flags: one encoding per state.
    if (!r.u8(st.flags) || st.flags == 0 || (st.flags & ~kStateKnownFlags) != 0) return bad("bad state flags");
  }
  if (r.left() != 0) return bad("trailing bytes after state");
  return st;
}

}  // namespace petrel::queue::format
