// queue/spool_test_util.h: helpers for the queue's unit tests only (temp dirs, envelopes).
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <string>

#include "base/log.h"
#include "base/temp_dir_testing.h"
#include "mail/envelope.h"
#include "queue/intake.h"

namespace petrel::queue::testing {

// A fresh directory for one test (base/temp_dir_testing.h).
struct TempDir : base::testing::TempDir {
  TempDir() : base::testing::TempDir("petrel-queue") {}
};

inline mail::Envelope sample_envelope(int recipients = 2) {
  mail::Envelope e;
  e.sender = {"alice", "example.org"};
  for (int i = 0; i < recipients; ++i) {
    mail::Recipient r;
    r.address = {"user" + std::to_string(i), "example.net"};
    r.notify = mail::kNotifyFailure | mail::kNotifyDelay;
    if (i % 2 == 0) {
      r.orcpt_type = "rfc822";
      r.orcpt = "orig" + std::to_string(i) + "@example.net";
    }
    e.recipients.push_back(r);
  }
  e.body = mail::BodyType::k8BitMime;
  e.smtputf8 = false;
  e.ret = mail::DsnRet::kHeaders;
  e.envid = "env-1";
  e.declared_size = 1234;
  e.client_ip = "192.0.2.7";
  e.helo = "mx.example.org";
  e.auth_user = "";
  e.received_at = 1767225600;
  return e;
}

inline void expect_same(const mail::Envelope& a, const mail::Envelope& b) {
  EXPECT_EQ(a.sender, b.sender);
  ASSERT_EQ(a.recipients.size(), b.recipients.size());
  for (std::size_t i = 0; i < a.recipients.size(); ++i) {
    EXPECT_EQ(a.recipients[i].address, b.recipients[i].address) << i;
    EXPECT_EQ(a.recipients[i].notify, b.recipients[i].notify) << i;
    EXPECT_EQ(a.recipients[i].orcpt_type, b.recipients[i].orcpt_type) << i;
    EXPECT_EQ(a.recipients[i].orcpt, b.recipients[i].orcpt) << i;
  }
  EXPECT_EQ(a.body, b.body);
  EXPECT_EQ(a.smtputf8, b.smtputf8);
  EXPECT_EQ(a.ret, b.ret);
  EXPECT_EQ(a.envid, b.envid);
  EXPECT_EQ(a.declared_size, b.declared_size);
  EXPECT_EQ(a.client_ip, b.client_ip);
  EXPECT_EQ(a.helo, b.helo);
  EXPECT_EQ(a.auth_user, b.auth_user);
  EXPECT_EQ(a.received_at, b.received_at);
}

inline std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

inline void write_file(const std::string& path, const std::string& data) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << data;
}

// Commits and waits for `done`.
inline base::Status commit_and_wait(MessageWriter& w) {
  std::promise<base::Status> p;
  auto f = p.get_future();
  w.commit([&p](base::Status s) { p.set_value(std::move(s)); });
  return f.get();
}

// Writes one message with `body` through `intake`; returns its id, or "" on failure.
inline std::string put_message(Intake& intake, const mail::Envelope& e, std::string_view body,
                               std::size_t chunk = 4096) {
  auto w = intake.begin(e);
  if (!w) return "";
  for (std::size_t i = 0; i < body.size(); i += chunk) {
    if (!(*w)->append(body.substr(i, chunk))) return "";
  }
  if (!commit_and_wait(**w)) return "";
  return (*w)->id();
}

// Keeps the unit tests' output to what matters.
class QuietLogs : public ::testing::Test {
 protected:
  void SetUp() override { (void)base::log::init(base::log::Level::kError, ""); }
  void TearDown() override { (void)base::log::init(base::log::Level::kInfo, ""); }
};

}  // namespace petrel::queue::testing
