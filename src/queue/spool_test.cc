// Recovery and reading: torn tails, damage in the middle, garbage spill files, the lock.
#include "queue/spool.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>

#include "base/clock.h"
#include "base/ids.h"
#include "queue/intake_impl.h"
#include "queue/spool_test_util.h"

namespace petrel::queue {
namespace {

using testing::put_message;
using testing::read_file;
using testing::sample_envelope;
using testing::TempDir;
using testing::write_file;

class SpoolTest : public testing::QuietLogs {
 protected:
  config::QueueConfig config_;
  base::FakeClock clock_;

  std::unique_ptr<Spool> open_spool(const std::string& dir, Spool::Mode mode = Spool::Mode::kWritable) {
    auto s = Spool::open(dir, config_, mode);
    EXPECT_TRUE(s) << s.error().message;
    return s ? std::move(s).value() : nullptr;
  }

  // Writes `bodies.size()` messages into a fresh spool at `dir` and closes it.
  std::vector<std::string> fill(const std::string& dir, const std::vector<std::string>& bodies) {
    auto spool = open_spool(dir);
    auto intake = IntakeImpl::create(*spool, clock_);
    EXPECT_TRUE(intake);
    std::vector<std::string> ids;
    for (const auto& b : bodies) ids.push_back(put_message(**intake, sample_envelope(), b));
    return ids;
  }

  std::vector<StoredMessage> all(const Spool& spool, ScanReport* report = nullptr) {
    std::vector<StoredMessage> v;
    auto s = spool.for_each_message([&](const StoredMessage& m) { v.push_back(m); }, report);
    EXPECT_TRUE(s) << s.error().message;
    return v;
  }
};

std::string segment1(const std::string& dir) { return dir + "/queue/log/0000000000000001.seg"; }

TEST_F(SpoolTest, TornTailAtEveryByteOfTheLastRecordDropsOnlyIt) {
  TempDir src;
  auto ids = fill(src.path(), {"Subject: 1\r\n\r\none\r\n", "Subject: 2\r\n\r\ntwo\r\n", "Subject: 3\r\n\r\nthree\r\n"});
  std::string full = read_file(segment1(src.path()));
  std::uint64_t last_at = 0;
  {
    auto spool = open_spool(src.path(), Spool::Mode::kReadOnly);
    auto msgs = all(*spool);
    ASSERT_EQ(msgs.size(), 3u);
    last_at = msgs[2].record_offset;
  }

  for (std::uint64_t cut = last_at; cut < full.size(); ++cut) {
    SCOPED_TRACE(cut);
    TempDir dir;
    std::filesystem::create_directories(dir.path() + "/queue/log");
    write_file(segment1(dir.path()), full.substr(0, cut));

    // Read-only (the CLI beside a running server): sees two, changes nothing.
    {
      auto ro = open_spool(dir.path(), Spool::Mode::kReadOnly);
      EXPECT_EQ(all(*ro).size(), 2u);
      EXPECT_EQ(std::filesystem::file_size(segment1(dir.path())), cut);
    }
    // Writable: cuts the tail, keeps the two, and appends after them.
    auto spool = open_spool(dir.path());
    EXPECT_EQ(spool->recovery().messages, 2u);
    EXPECT_EQ(spool->recovery().torn_tail_bytes, cut - last_at);
    EXPECT_EQ(std::filesystem::file_size(segment1(dir.path())), last_at);
    auto msgs = all(*spool);
    ASSERT_EQ(msgs.size(), 2u);
    EXPECT_EQ(msgs[0].id, ids[0]);
    EXPECT_EQ(msgs[1].id, ids[1]);
    std::string body;
    ASSERT_TRUE(spool->read_body(msgs[1], body));
    EXPECT_EQ(body, "Subject: 2\r\n\r\ntwo\r\n");
  }
}

TEST_F(SpoolTest, TornTailThenNewCommitsAreAllReadable) {
  TempDir dir;
  fill(dir.path(), {"a", "b"});
  std::string full = read_file(segment1(dir.path()));
  write_file(segment1(dir.path()), full.substr(0, full.size() - 1));
  {
    auto spool = open_spool(dir.path());
    auto intake = IntakeImpl::create(*spool, clock_);
    ASSERT_TRUE(intake);
    EXPECT_FALSE(put_message(**intake, sample_envelope(), "c").empty());
  }
  auto spool = open_spool(dir.path());
  auto msgs = all(*spool);
  ASSERT_EQ(msgs.size(), 2u);
  std::string body;
  ASSERT_TRUE(spool->read_body(msgs[1], body));
  EXPECT_EQ(body, "c");
  EXPECT_EQ(spool->recovery().corrupt_regions, 0u);
}

TEST_F(SpoolTest, DamageInTheMiddleRecordIsSkippedAndCounted) {
  // Which byte of record 2 to damage: its magic, its length, its payload, its CRC.
  for (int where : {0, 9, 40, 14}) {
    SCOPED_TRACE(where);
    TempDir dir;
    auto ids = fill(dir.path(), {"one", "two", "three"});
    std::uint64_t second = 0;
    {
      auto ro = open_spool(dir.path(), Spool::Mode::kReadOnly);
      second = all(*ro)[1].record_offset;
    }
    std::string seg = read_file(segment1(dir.path()));
    seg[second + static_cast<std::uint64_t>(where)] ^= 0x20;
    write_file(segment1(dir.path()), seg);

    auto spool = open_spool(dir.path());
    EXPECT_EQ(spool->recovery().corrupt_regions, 1u);
    EXPECT_EQ(spool->recovery().torn_tail_bytes, 0u);
    EXPECT_EQ(std::filesystem::file_size(segment1(dir.path())), seg.size()) << "no truncation for damage in the middle";
    auto msgs = all(*spool);
    ASSERT_EQ(msgs.size(), 2u);
    EXPECT_EQ(msgs[0].id, ids[0]);
    EXPECT_EQ(msgs[1].id, ids[2]);
  }
}

TEST_F(SpoolTest, ARecordHiddenInABodyIsNotTakenForOneWhenResyncing) {
  // A sender who knows the format puts a whole MESSAGE record in its body; after damage to the
  // real header, the reader resyncs into that body. The per-segment salt in the CRC stops it.
  std::string forged_payload;
  ASSERT_TRUE(format::encode_message(base::new_queue_id(std::chrono::system_clock::now()), sample_envelope(9),
                                     {format::BodyKind::kInline, 0, 0}, {}, forged_payload));
  std::string forged;
  for (std::uint64_t salt : {0ULL, 1ULL, ~0ULL}) format::encode_record(salt, format::RecordType::kMessage, forged_payload, forged);

  TempDir dir;
  auto ids = fill(dir.path(), {"one", "x" + forged + "y", "three"});
  std::uint64_t second = 0;
  {
    auto ro = open_spool(dir.path(), Spool::Mode::kReadOnly);
    auto msgs = all(*ro);
    ASSERT_EQ(msgs.size(), 3u);
    second = msgs[1].record_offset;
  }
  std::string seg = read_file(segment1(dir.path()));
  seg[second] = 'X';
  write_file(segment1(dir.path()), seg);
  auto spool = open_spool(dir.path());
  auto msgs = all(*spool);
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(msgs[1].id, ids[2]);
}

TEST_F(SpoolTest, SpillFilesWithoutARecordAreDeletedAtOpen) {
  TempDir dir;
  config_.memory_per_message = 16;
  auto ids = fill(dir.path(), {std::string(1000, 'a')});
  std::string committed = dir.path() + "/queue/body/" + ids[0];
  ASSERT_TRUE(std::filesystem::exists(committed));
  std::string orphan = dir.path() + "/queue/body/" + base::new_queue_id(std::chrono::system_clock::now());
  write_file(orphan, "half a message");

  {
    // Read-only opens never delete.
    auto ro = open_spool(dir.path(), Spool::Mode::kReadOnly);
    EXPECT_TRUE(std::filesystem::exists(orphan));
  }
  auto spool = open_spool(dir.path());
  EXPECT_EQ(spool->recovery().garbage_spills, 1u);
  EXPECT_FALSE(std::filesystem::exists(orphan));
  EXPECT_TRUE(std::filesystem::exists(committed));
  auto msgs = all(*spool);
  ASSERT_EQ(msgs.size(), 1u);
  std::string body;
  ASSERT_TRUE(spool->read_body(msgs[0], body));
  EXPECT_EQ(body, std::string(1000, 'a'));
}

TEST_F(SpoolTest, DamagedBodiesFailTheirCrc) {
  TempDir dir;
  config_.memory_per_message = 16;
  fill(dir.path(), {std::string(1000, 'a'), "inline"});
  auto spool = open_spool(dir.path(), Spool::Mode::kReadOnly);
  auto msgs = all(*spool);
  ASSERT_EQ(msgs.size(), 2u);

  std::string spill = read_file(msgs[0].body_path);
  spill[500] = 'b';
  write_file(msgs[0].body_path, spill);
  std::string body;
  EXPECT_FALSE(spool->read_body(msgs[0], body));
  write_file(msgs[0].body_path, spill.substr(0, 999));
  EXPECT_FALSE(spool->read_body(msgs[0], body));
  ::unlink(msgs[0].body_path.c_str());
  EXPECT_FALSE(spool->read_body(msgs[0], body));
  EXPECT_TRUE(spool->read_body(msgs[1], body));
}

TEST_F(SpoolTest, OneWriterAtATimeButReadersAnyTime) {
  TempDir dir;
  auto writer = open_spool(dir.path());
  ASSERT_TRUE(writer);
  auto second = Spool::open(dir.path(), config_, Spool::Mode::kWritable);
  ASSERT_FALSE(second);
  EXPECT_NE(second.error().message.find("in use"), std::string::npos) << second.error().message;
  EXPECT_TRUE(Spool::open(dir.path(), config_, Spool::Mode::kReadOnly));
  writer.reset();
  EXPECT_TRUE(Spool::open(dir.path(), config_, Spool::Mode::kWritable));
}

TEST_F(SpoolTest, ReadOnlyOpenOfAMissingSpoolFails) {
  TempDir dir;
  EXPECT_FALSE(Spool::open(dir.path() + "/nothing", config_, Spool::Mode::kReadOnly));
}

TEST_F(SpoolTest, HeaderlessLastSegmentIsRemoved) {
  TempDir dir;
  fill(dir.path(), {"one"});
  std::string seg2 = dir.path() + "/queue/log/0000000000000002.seg";
  write_file(seg2, "PETRL");  // crash while creating segment 2
  {
    auto spool = open_spool(dir.path());
    EXPECT_FALSE(std::filesystem::exists(seg2));
    auto intake = IntakeImpl::create(*spool, clock_);
    ASSERT_TRUE(intake);
    EXPECT_FALSE(put_message(**intake, sample_envelope(), "two").empty());
  }
  auto spool = open_spool(dir.path());
  EXPECT_EQ(all(*spool).size(), 2u);
}

// State records appended by hand (the committer writes them in intake_impl_test.cc): they
// come back interleaved with messages, in log order, and read_message_at finds each message.
TEST_F(SpoolTest, RecordsComeBackInLogOrderAndMessagesByLocation) {
  TempDir dir;
  auto ids = fill(dir.path(), {"Subject: 1\r\n\r\none\r\n", "Subject: 2\r\n\r\ntwo\r\n"});
  std::string seg = read_file(segment1(dir.path()));
  auto header = format::decode_segment_header(seg);
  ASSERT_TRUE(header);
  RecipientState st;
  st.id = ids[0];
  st.recipient = 1;
  st.status = RecipientStatus::kDeferred;
  st.attempts = 1;
  st.next_attempt = 1767225900;
  st.enhanced = "4.2.2";
  st.text = "mailbox full";
  std::string payload;
  ASSERT_TRUE(format::encode_state(st, payload));
  format::encode_record(header->salt, format::RecordType::kRecipientState, payload, seg);
  write_file(segment1(dir.path()), seg);

  auto spool = open_spool(dir.path());
  EXPECT_EQ(spool->recovery().states, 1u);
  EXPECT_EQ(spool->recovery().unknown_records, 0u);
  EXPECT_TRUE(spool->damaged_segments().empty());
  std::vector<std::string> order;
  std::vector<StoredMessage> msgs;
  ScanReport report;
  ASSERT_TRUE(spool->for_each_record(
      [&](const StoredMessage& m) {
        order.push_back("M " + m.id);
        msgs.push_back(m);
      },
      [&](const RecipientState& s, std::uint64_t segment) {
        order.push_back("S " + s.id);
        EXPECT_EQ(s, st);
        EXPECT_EQ(segment, 1u);
      },
      &report));
  EXPECT_EQ(order, (std::vector<std::string>{"M " + ids[0], "M " + ids[1], "S " + ids[0]}));
  EXPECT_EQ(report.messages, 2u);
  EXPECT_EQ(report.states, 1u);
  EXPECT_EQ(all(*spool).size(), 2u);  // for_each_message is unchanged

  for (const auto& m : msgs) {
    auto again = spool->read_message_at(m.segment, m.record_offset);
    ASSERT_TRUE(again) << again.error().message;
    EXPECT_EQ(again->id, m.id);
    EXPECT_EQ(again->body_offset, m.body_offset);
    std::string body;
    ASSERT_TRUE(spool->read_body(*again, body));
  }
  EXPECT_FALSE(spool->read_message_at(1, msgs[0].record_offset + 1));
  EXPECT_FALSE(spool->read_message_at(1, msgs[1].record_offset + msgs[1].body.length + 200));
  EXPECT_FALSE(spool->read_message_at(7, format::kSegmentHeaderSize));

  auto segs = spool->list_segments();
  ASSERT_TRUE(segs);
  EXPECT_EQ(*segs, std::vector<std::uint64_t>{1});
}

// ---- quarantine (issue 4) ----

std::string quarantine(const std::string& dir) { return dir + "/queue/quarantine"; }

// The names in quarantine/, sorted; empty when it does not exist.
std::vector<std::string> quarantined_files(const std::string& dir) {
  std::vector<std::string> names;
  if (!std::filesystem::exists(quarantine(dir))) return names;
  for (const auto& e : std::filesystem::directory_iterator(quarantine(dir))) names.push_back(e.path().filename());
  std::sort(names.begin(), names.end());
  return names;
}

// The record length (header + payload) of the record at `offset` of a segment's bytes.
std::uint64_t record_size(const std::string& seg, std::uint64_t offset) {
  auto h = format::decode_record_header(std::string_view(seg).substr(offset, format::kRecordHeaderSize));
  EXPECT_TRUE(h);
  return h ? format::kRecordHeaderSize + h->length : 0;
}

TEST_F(SpoolTest, CorruptBytesInTheMiddleAreQuarantinedOnceAndTheRestIsReported) {
  TempDir dir;
  auto ids = fill(dir.path(), {"Subject: 1\r\n\r\none\r\n", "Subject: 2\r\n\r\ntwo\r\n", "Subject: 3\r\n\r\nthree\r\n",
                               "Subject: 4\r\n\r\nfour\r\n"});
  std::uint64_t second = 0, third = 0;
  {
    auto ro = open_spool(dir.path(), Spool::Mode::kReadOnly);
    auto msgs = all(*ro);
    ASSERT_EQ(msgs.size(), 4u);
    second = msgs[1].record_offset;
    third = msgs[2].record_offset;
  }
  std::string seg = read_file(segment1(dir.path()));
  seg[second + 40] ^= 0x55;  // inside the second message's payload
  write_file(segment1(dir.path()), seg);

  std::string name = "0000000000000001.seg-" + std::to_string(second) + ".bin";
  {
    auto spool = open_spool(dir.path());
    ASSERT_TRUE(spool);
    EXPECT_EQ(spool->recovery().corrupt_regions, 1u);
    EXPECT_EQ(spool->recovery().quarantined, 1u);
    EXPECT_EQ(spool->recovery().quarantine_failed, 0u);
    EXPECT_EQ(quarantined_files(dir.path()), std::vector<std::string>{name});
    EXPECT_EQ(read_file(quarantine(dir.path()) + "/" + name), seg.substr(second, third - second))
        << "exactly the bytes skipped, damage included";
    EXPECT_TRUE(spool->damaged_segments().empty()) << "its damage is copied out: segment 1 may be retired";
    EXPECT_EQ(read_file(segment1(dir.path())), seg) << "the segment itself is not changed";
    auto msgs = all(*spool);
    ASSERT_EQ(msgs.size(), 3u);
    EXPECT_EQ(msgs[0].id, ids[0]);
    EXPECT_EQ(msgs[1].id, ids[2]);
    EXPECT_EQ(msgs[2].id, ids[3]);
    std::string body;
    ASSERT_TRUE(spool->read_body(msgs[2], body));
    EXPECT_EQ(body, "Subject: 4\r\n\r\nfour\r\n");
  }
  // Recovery runs on every start: the region is found again but not copied again.
  auto spool = open_spool(dir.path());
  ASSERT_TRUE(spool);
  EXPECT_EQ(spool->recovery().corrupt_regions, 1u);
  EXPECT_EQ(spool->recovery().quarantined, 0u);
  EXPECT_EQ(quarantined_files(dir.path()), std::vector<std::string>{name});
  EXPECT_TRUE(spool->damaged_segments().empty());
  EXPECT_EQ(all(*spool).size(), 3u);
}

TEST_F(SpoolTest, AShorterCopyFromAnEarlierStartIsReplaced) {
  // A copy of the wrong size is not the region's (say the damage grew): it is written again.
  TempDir dir;
  fill(dir.path(), {"one", "two", "three"});
  std::uint64_t second = 0;
  {
    auto ro = open_spool(dir.path(), Spool::Mode::kReadOnly);
    second = all(*ro)[1].record_offset;
  }
  std::string seg = read_file(segment1(dir.path()));
  seg[second + 20] ^= 1;
  write_file(segment1(dir.path()), seg);
  std::filesystem::create_directories(quarantine(dir.path()));
  std::string copy = quarantine(dir.path()) + "/0000000000000001.seg-" + std::to_string(second) + ".bin";
  write_file(copy, "short");
  auto spool = open_spool(dir.path());
  EXPECT_EQ(spool->recovery().quarantined, 1u);
  EXPECT_EQ(read_file(copy), seg.substr(second, record_size(seg, second)));
}

TEST_F(SpoolTest, ADamagedSegmentHeaderIsQuarantinedWhole) {
  TempDir dir;
  config_.segment_size = 4096;
  std::vector<std::string> bodies;
  for (int i = 0; i < 8; ++i) bodies.push_back(std::string(1500, static_cast<char>('a' + i)));
  auto ids = fill(dir.path(), bodies);
  std::vector<StoredMessage> before;
  {
    auto ro = open_spool(dir.path(), Spool::Mode::kReadOnly);
    before = all(*ro);
  }
  ASSERT_EQ(before.size(), 8u);
  ASSERT_GE(before.back().segment, 3u) << "the test wants several segments";
  std::size_t in_first = std::count_if(before.begin(), before.end(), [](const StoredMessage& m) { return m.segment == 1; });

  std::string seg = read_file(segment1(dir.path()));
  seg[33] ^= 1;  // the header's CRC
  write_file(segment1(dir.path()), seg);
  {
    auto spool = open_spool(dir.path());
    ASSERT_TRUE(spool);
    EXPECT_EQ(spool->recovery().quarantined, 1u);
    EXPECT_EQ(quarantined_files(dir.path()), std::vector<std::string>{"0000000000000001.seg-0.bin"});
    EXPECT_EQ(read_file(quarantine(dir.path()) + "/0000000000000001.seg-0.bin"), seg);
    EXPECT_TRUE(spool->damaged_segments().empty());
    auto msgs = all(*spool);
    ASSERT_EQ(msgs.size(), 8u - in_first);
    EXPECT_EQ(msgs.back().id, ids.back());
  }
  auto again = open_spool(dir.path());
  EXPECT_EQ(again->recovery().quarantined, 0u);
  EXPECT_EQ(quarantined_files(dir.path()).size(), 1u);
}

TEST_F(SpoolTest, TheAbandonedTailOfAnEarlierSegmentIsQuarantinedNotCut) {
  TempDir dir;
  config_.segment_size = 4096;
  fill(dir.path(), {std::string(1500, 'a'), std::string(1500, 'b'), std::string(1500, 'c'), std::string(1500, 'd')});
  ASSERT_TRUE(std::filesystem::exists(dir.path() + "/queue/log/0000000000000002.seg"));
  // What the committer leaves when it cannot cut a failed batch back: bytes at the end of a
  // segment it never appends to again.
  std::string seg = read_file(segment1(dir.path()));
  std::string tail = "PREC\x01 half a batch that never got its 250";
  write_file(segment1(dir.path()), seg + tail);

  auto spool = open_spool(dir.path());
  EXPECT_EQ(spool->recovery().torn_tail_bytes, tail.size());
  EXPECT_EQ(spool->recovery().quarantined, 1u);
  std::string name = "0000000000000001.seg-" + std::to_string(seg.size()) + ".bin";
  EXPECT_EQ(quarantined_files(dir.path()), std::vector<std::string>{name});
  EXPECT_EQ(read_file(quarantine(dir.path()) + "/" + name), tail);
  EXPECT_EQ(std::filesystem::file_size(segment1(dir.path())), seg.size() + tail.size());
  EXPECT_TRUE(spool->damaged_segments().empty());
  EXPECT_EQ(all(*spool).size(), 4u);
}

TEST_F(SpoolTest, ATornTailOfTheLastSegmentIsCutNotQuarantined) {
  TempDir dir;
  fill(dir.path(), {"a", "b"});
  std::string full = read_file(segment1(dir.path()));
  write_file(segment1(dir.path()), full.substr(0, full.size() - 1));
  auto spool = open_spool(dir.path());
  EXPECT_GT(spool->recovery().torn_tail_bytes, 0u);
  EXPECT_EQ(spool->recovery().quarantined, 0u);
  EXPECT_TRUE(quarantined_files(dir.path()).empty()) << "never acknowledged, and quarantine/ is made only when needed";
}

TEST_F(SpoolTest, WhenQuarantineCannotBeMadeTheSegmentIsKeptForTheOperator) {
  TempDir dir;
  auto ids = fill(dir.path(), {"Subject: 1\r\n\r\none\r\n", "Subject: 2\r\n\r\ntwo\r\n", "Subject: 3\r\n\r\nthree\r\n"});
  std::string seg = read_file(segment1(dir.path()));
  seg[format::kSegmentHeaderSize + 20] ^= 1;  // inside the first record
  write_file(segment1(dir.path()), seg);
  // quarantine/ cannot be created: a file has its name.
  write_file(quarantine(dir.path()), "in the way");
  {
    auto spool = open_spool(dir.path());
    ASSERT_TRUE(spool) << "a failed copy does not stop the server";
    EXPECT_EQ(spool->recovery().quarantined, 0u);
    EXPECT_EQ(spool->recovery().quarantine_failed, 1u);
    EXPECT_EQ(spool->damaged_segments(), std::set<std::uint64_t>{1});
    auto msgs = all(*spool);
    ASSERT_EQ(msgs.size(), 2u);
    EXPECT_EQ(msgs[0].id, ids[1]);
  }
  // The operator clears the way; the next start copies the region and lets the segment go.
  std::filesystem::remove(quarantine(dir.path()));
  auto spool = open_spool(dir.path());
  EXPECT_EQ(spool->recovery().quarantined, 1u);
  EXPECT_TRUE(spool->damaged_segments().empty());
}

TEST_F(SpoolTest, AFailedSyncOfTheCopyLeavesNoQuarantineFileAndKeepsTheSegment) {
  TempDir dir;
  fill(dir.path(), {"one", "two", "three"});
  std::uint64_t second = 0;
  {
    auto ro = open_spool(dir.path(), Spool::Mode::kReadOnly);
    second = all(*ro)[1].record_offset;
  }
  std::string seg = read_file(segment1(dir.path()));
  seg[second + 20] ^= 1;
  write_file(segment1(dir.path()), seg);
  SpoolIo io;
  io.fdatasync = [](int) {
    errno = EIO;
    return -1;
  };
  {
    auto spool = Spool::open(dir.path(), config_, Spool::Mode::kWritable, io);
    ASSERT_TRUE(spool) << spool.error().message;
    EXPECT_EQ((*spool)->recovery().quarantine_failed, 1u);
    EXPECT_EQ((*spool)->damaged_segments(), std::set<std::uint64_t>{1});
    for (const auto& n : quarantined_files(dir.path())) EXPECT_TRUE(n.ends_with(".tmp")) << n << ": not synced";
  }
  auto spool = open_spool(dir.path());
  EXPECT_EQ(spool->recovery().quarantined, 1u);
  EXPECT_TRUE(spool->damaged_segments().empty());
}

TEST_F(SpoolTest, ReadOnlyOpenQuarantinesNothing) {
  TempDir dir;
  fill(dir.path(), {"one", "two", "three"});
  std::string seg = read_file(segment1(dir.path()));
  seg[format::kSegmentHeaderSize + 20] ^= 1;
  write_file(segment1(dir.path()), seg);
  auto ro = open_spool(dir.path(), Spool::Mode::kReadOnly);
  EXPECT_EQ(all(*ro).size(), 2u);
  EXPECT_FALSE(std::filesystem::exists(quarantine(dir.path())));
}

// A message whose body cannot be delivered: check_body() says why, quarantine_message() takes
// the record and the spill file out.
TEST_F(SpoolTest, CheckBodyNamesTheDamage) {
  TempDir dir;
  config_.memory_per_message = 16;
  fill(dir.path(), {std::string(1000, 'a'), "inline"});
  auto spool = open_spool(dir.path());
  auto msgs = all(*spool);
  ASSERT_EQ(msgs.size(), 2u);
  const StoredMessage& spilled = msgs[0];
  ASSERT_EQ(spilled.body.kind, format::BodyKind::kSpill);

  auto damage = [&](const StoredMessage& m) {
    auto r = spool->check_body(m);
    EXPECT_TRUE(r) << r.error().message;
    return r && *r ? **r : std::string("whole");
  };
  EXPECT_EQ(damage(spilled), "whole");
  EXPECT_EQ(damage(msgs[1]), "whole");
  std::string bytes = read_file(spilled.body_path);
  bytes[500] = 'b';
  write_file(spilled.body_path, bytes);
  EXPECT_EQ(damage(spilled), "body CRC mismatch");
  write_file(spilled.body_path, bytes.substr(0, 999));
  EXPECT_EQ(damage(spilled), "spill file has 999 bytes, 1000 committed");
  ::unlink(spilled.body_path.c_str());
  EXPECT_EQ(damage(spilled), "spill file missing");
}

TEST_F(SpoolTest, QuarantineMessageCopiesTheRecordAndMovesTheSpill) {
  TempDir dir;
  config_.memory_per_message = 16;
  auto ids = fill(dir.path(), {std::string(1000, 'a'), "inline", std::string(2000, 'c')});
  auto spool = open_spool(dir.path());
  auto msgs = all(*spool);
  ASSERT_EQ(msgs.size(), 3u);
  const StoredMessage& bad = msgs[0];
  std::string spill = read_file(bad.body_path);
  spill[10] ^= 1;
  write_file(bad.body_path, spill);
  auto why = spool->check_body(bad);
  ASSERT_TRUE(why && *why);

  ASSERT_TRUE(spool->quarantine_message(bad, **why));
  std::string seg = read_file(segment1(dir.path()));
  std::string q = quarantine(dir.path()) + "/";
  EXPECT_EQ(quarantined_files(dir.path()), (std::vector<std::string>{ids[0] + ".body", ids[0] + ".record"}));
  EXPECT_EQ(read_file(q + ids[0] + ".record"), seg.substr(bad.record_offset, record_size(seg, bad.record_offset)));
  EXPECT_EQ(read_file(q + ids[0] + ".body"), spill) << "moved as it was, damage included";
  EXPECT_FALSE(std::filesystem::exists(bad.body_path)) << "delivery must not find it again";
  // The copied record is the real one: it decodes to the same message.
  std::string rec = read_file(q + ids[0] + ".record");
  auto decoded = format::decode_message(std::string_view(rec).substr(format::kRecordHeaderSize));
  ASSERT_TRUE(decoded);
  EXPECT_EQ(decoded->id, ids[0]);

  // Twice (a crash before the FAILED records were durable, then the same decision again).
  ASSERT_TRUE(spool->quarantine_message(bad, "spill file missing"));
  EXPECT_EQ(quarantined_files(dir.path()).size(), 2u);
  EXPECT_EQ(read_file(q + ids[0] + ".body"), spill);

  // An inline message has only its record; the others are untouched.
  ASSERT_TRUE(spool->quarantine_message(msgs[1], "test"));
  EXPECT_TRUE(std::filesystem::exists(q + ids[1] + ".record"));
  EXPECT_FALSE(std::filesystem::exists(q + ids[1] + ".body"));
  std::string body;
  EXPECT_TRUE(spool->read_body(msgs[1], body)) << "the record stays in its segment";
  EXPECT_TRUE(spool->read_body(msgs[2], body));
  EXPECT_EQ(body, std::string(2000, 'c'));

  // Recovery leaves quarantine/ alone, and the record is still reported until it is final.
  spool.reset();
  spool = open_spool(dir.path());
  EXPECT_EQ(spool->recovery().garbage_spills, 0u);
  EXPECT_EQ(spool->recovery().quarantined, 0u);
  EXPECT_EQ(quarantined_files(dir.path()).size(), 3u);
  EXPECT_EQ(all(*spool).size(), 3u);
}

// A torn tail full of things that look like record headers, each claiming a payload that runs
// to the end of the file: checking each candidate's CRC by reading its payload would read
// about tail²/(2 × spacing) bytes. The work must stay linear in the tail's length.
TEST_F(SpoolTest, ATornTailFullOfFakeHeadersIsSearchedInLinearWork) {
  for (std::uint64_t tail : {std::uint64_t{512} << 10, std::uint64_t{4} << 20}) {
    SCOPED_TRACE(tail);
    TempDir dir;
    fill(dir.path(), {"one", "two"});
    std::string seg = read_file(segment1(dir.path()));
    std::string fake(tail, 'x');
    constexpr std::size_t kSpacing = 64;
    for (std::size_t at = 0; at + format::kRecordHeaderSize <= fake.size(); at += kSpacing) {
      std::uint32_t length = static_cast<std::uint32_t>(fake.size() - at - format::kRecordHeaderSize);
      std::memcpy(&fake[at], "PREC\x01\x00\x00\x00", 8);
      for (int k = 0; k < 4; ++k) fake[at + 8 + static_cast<std::size_t>(k)] = static_cast<char>(length >> (8 * k));
      std::memcpy(&fake[at + 12], "\x12\x34\x56\x78", 4);  // a CRC that does not match
    }
    write_file(segment1(dir.path()), seg + fake);

    auto spool = open_spool(dir.path());
    ASSERT_TRUE(spool);
    EXPECT_EQ(spool->recovery().messages, 2u);
    EXPECT_EQ(spool->recovery().torn_tail_bytes, tail);
    EXPECT_EQ(std::filesystem::file_size(segment1(dir.path())), seg.size());
    // Linear: a handful of reads of each byte (the bound documented in queue/README.md).
    ASSERT_LE(spool->recovery().resync_bytes_read, 6 * tail) << "quadratic search";
  }
}

// Damage in the middle followed by many fake headers and then a real record: the search still
// finds the real record, in linear work.
TEST_F(SpoolTest, FakeHeadersBetweenDamageAndTheNextRecordAreSkipped) {
  TempDir dir;
  config_.memory_per_message = 1 << 20;  // the second body inline, in the segment
  auto ids = fill(dir.path(), {"one", std::string(256 << 10, 'y'), "three"});
  std::uint64_t second = 0, third = 0;
  {
    auto ro = open_spool(dir.path(), Spool::Mode::kReadOnly);
    auto msgs = all(*ro);
    ASSERT_EQ(msgs.size(), 3u);
    second = msgs[1].record_offset;
    third = msgs[2].record_offset;
  }
  std::string seg = read_file(segment1(dir.path()));
  // The second record's header is damaged, and its body is full of fakes claiming lengths
  // that run past the third record.
  seg[second] = 'X';
  for (std::uint64_t at = second + 1000; at + 64 < third; at += 64) {
    std::uint32_t length = static_cast<std::uint32_t>(seg.size() - at - format::kRecordHeaderSize);
    std::memcpy(&seg[at], "PREC\x01\x00\x00\x00", 8);
    for (int k = 0; k < 4; ++k) seg[at + 8 + static_cast<std::size_t>(k)] = static_cast<char>(length >> (8 * k));
  }
  ASSERT_GT(third - second, std::uint64_t{200} << 10) << "the test wants the fakes in the segment";
  write_file(segment1(dir.path()), seg);
  auto spool = open_spool(dir.path());
  ASSERT_TRUE(spool);
  EXPECT_EQ(spool->recovery().corrupt_regions, 1u);
  EXPECT_EQ(spool->recovery().corrupt_bytes, third - second);
  auto msgs = all(*spool);
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(msgs[1].id, ids[2]);
  EXPECT_LE(spool->recovery().resync_bytes_read, 6 * seg.size());
}

// ---- spilled bodies of messages in a skipped region (issue 11) ----

// A record that cannot be read still had its 250: its spilled body, which no readable record
// names, must not be taken for garbage. Each kind of skipped region in turn.
TEST_F(SpoolTest, TheSpilledBodyOfAMessageInASkippedRegionGoesToQuarantine) {
  enum class Damage { kMiddleRecord, kSegmentHeader, kAbandonedTail };
  for (Damage damage : {Damage::kMiddleRecord, Damage::kSegmentHeader, Damage::kAbandonedTail}) {
    SCOPED_TRACE(static_cast<int>(damage));
    TempDir dir;
    config_.memory_per_message = 16;
    config_.segment_size = 1024;  // a few records per segment
    std::vector<std::string> bodies;
    for (int i = 0; i < 8; ++i) bodies.push_back(std::string(3000, static_cast<char>('a' + i)));
    auto ids = fill(dir.path(), bodies);
    std::vector<StoredMessage> before;
    {
      auto ro = open_spool(dir.path(), Spool::Mode::kReadOnly);
      before = all(*ro);
    }
    ASSERT_EQ(before.size(), 8u);
    ASSERT_EQ(before[1].body.kind, format::BodyKind::kSpill);
    std::string seg = read_file(segment1(dir.path()));
    std::set<std::string> lost;  // ids whose record can no longer be read
    switch (damage) {
      case Damage::kMiddleRecord:
        ASSERT_EQ(before[2].segment, 1u) << "the test wants a record after the damaged one";
        seg[before[1].record_offset + 30] ^= 0x10;
        lost = {ids[1]};
        break;
      case Damage::kSegmentHeader:
        seg[33] ^= 1;
        for (const auto& m : before) {
          if (m.segment == 1) lost.insert(m.id);
        }
        break;
      case Damage::kAbandonedTail:
        // Bytes at the end of the segment that the last record no longer covers: a bit flip in
        // its length makes it look like the tail of a failed batch.
        ASSERT_GT(before.back().segment, 1u) << "the test wants segment 1 not to be the last";
        {
          std::uint64_t last_in_1 = 0;
          for (const auto& m : before) {
            if (m.segment == 1) last_in_1 = m.record_offset;
          }
          seg[last_in_1 + 8] ^= 0x01;
          for (const auto& m : before) {
            if (m.record_offset == last_in_1 && m.segment == 1) lost = {m.id};
          }
        }
        break;
    }
    ASSERT_FALSE(lost.empty());
    write_file(segment1(dir.path()), seg);
    // A message whose session was cut before its commit: never acknowledged, but nothing tells
    // it apart from one whose record is damaged, so it goes to quarantine too. An empty spill
    // (created, nothing synced) and a name that is not a queue id cannot be a committed body.
    std::string in_flight = base::new_queue_id(std::chrono::system_clock::now());
    write_file(dir.path() + "/queue/body/" + in_flight, "half a message");
    std::string empty = base::new_queue_id(std::chrono::system_clock::now());
    write_file(dir.path() + "/queue/body/" + empty, "");
    write_file(dir.path() + "/queue/body/not-an-id", "x");

    auto spool = open_spool(dir.path());
    ASSERT_TRUE(spool);
    EXPECT_EQ(spool->recovery().quarantined_spills, lost.size() + 1);
    EXPECT_EQ(spool->recovery().garbage_spills, 2u);
    std::string q = quarantine(dir.path()) + "/";
    for (std::size_t i = 0; i < ids.size(); ++i) {
      if (lost.count(ids[i])) {
        EXPECT_EQ(read_file(q + ids[i] + ".body"), bodies[i]) << "the body of " << ids[i] << " is kept";
        EXPECT_FALSE(std::filesystem::exists(dir.path() + "/queue/body/" + ids[i]));
      } else {
        EXPECT_TRUE(std::filesystem::exists(dir.path() + "/queue/body/" + ids[i])) << "readable: left for delivery";
      }
    }
    EXPECT_EQ(read_file(q + in_flight + ".body"), "half a message");
    EXPECT_FALSE(std::filesystem::exists(dir.path() + "/queue/body/" + empty));
    EXPECT_FALSE(std::filesystem::exists(dir.path() + "/queue/body/not-an-id"));
    EXPECT_TRUE(spool->damaged_segments().empty());
    // Every readable message still reads whole.
    auto msgs = all(*spool);
    EXPECT_EQ(msgs.size(), ids.size() - lost.size());
    for (const auto& m : msgs) {
      std::string body;
      EXPECT_TRUE(spool->read_body(m, body)) << m.id;
    }

    // The next start finds the same damage and nothing more to move.
    spool.reset();
    spool = open_spool(dir.path());
    EXPECT_EQ(spool->recovery().quarantined_spills, 0u);
    EXPECT_EQ(spool->recovery().garbage_spills, 0u);
    for (const auto& id : lost) EXPECT_TRUE(std::filesystem::exists(q + id + ".body"));
  }
}

TEST_F(SpoolTest, AnUnclaimedSpillThatCannotBeQuarantinedStaysAndKeepsItsSegment) {
  TempDir dir;
  config_.memory_per_message = 16;
  auto ids = fill(dir.path(), {std::string(500, 'a'), std::string(500, 'b'), std::string(500, 'c')});
  std::uint64_t second = 0;
  {
    auto ro = open_spool(dir.path(), Spool::Mode::kReadOnly);
    second = all(*ro)[1].record_offset;
  }
  std::string seg = read_file(segment1(dir.path()));
  seg[second + 30] ^= 0x10;
  write_file(segment1(dir.path()), seg);
  // The region is copied out, but quarantine/<id>.body is taken (say by an earlier copy).
  std::filesystem::create_directories(quarantine(dir.path()));
  write_file(quarantine(dir.path()) + "/" + ids[1] + ".body", "someone else's");

  auto spool = open_spool(dir.path());
  ASSERT_TRUE(spool);
  EXPECT_EQ(spool->recovery().quarantined_spills, 0u);
  EXPECT_EQ(spool->recovery().quarantine_failed, 1u);
  EXPECT_EQ(read_file(dir.path() + "/queue/body/" + ids[1]), std::string(500, 'b')) << "never deleted";
  EXPECT_EQ(spool->damaged_segments(), std::set<std::uint64_t>{1}) << "kept, so the next start sees the damage again";
}

TEST_F(SpoolTest, QuarantineMessageFailsWhenItCannotCopy) {
  TempDir dir;
  config_.memory_per_message = 16;
  fill(dir.path(), {std::string(1000, 'a')});
  auto spool = open_spool(dir.path());
  auto msgs = all(*spool);
  ASSERT_EQ(msgs.size(), 1u);
  write_file(quarantine(dir.path()), "in the way");
  EXPECT_FALSE(spool->quarantine_message(msgs[0], "test"));
  EXPECT_TRUE(std::filesystem::exists(msgs[0].body_path)) << "nothing moved when the record could not be copied";
  StoredMessage forged = msgs[0];
  forged.id = "../../etc";
  std::filesystem::remove(quarantine(dir.path()));
  EXPECT_FALSE(spool->quarantine_message(forged, "test")) << "the id names files: only a queue id will do";
}

}  // namespace
}  // namespace petrel::queue
