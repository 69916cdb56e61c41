// dns/fake_resolver.h: an in-memory Resolver for unit tests of the layers above (library
// petrel::dns_testing, linked only by tests).
//
// Promise: behaves like the real one at the interface: `done` is posted to the executor, exactly
// once, with the answer configured for (name, type) at the time of the lookup. Names are
// matched case-insensitively, without a trailing dot. A PTR lookup is keyed by the address text
// as given ("192.0.2.1"), not by its in-addr.arpa name.
// Unconfigured (name, type): kNoData when the name has another type configured (with a status
// other than kNxDomain), else kNxDomain, like a real zone.
// hold(true) keeps answers back until release_*(), to test timeouts and completion order; a
// held lookup is never answered unless released (the fake has no timer of its own).
// Thread: one thread (the test's, which runs the executor).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <cstddef>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "dns/resolver.h"

namespace petrel::dns {

class FakeResolver final : public Resolver {
 public:
  explicit FakeResolver(boost::asio::any_io_executor executor) : executor_(std::move(executor)) {}

  void lookup(std::string name, Type type, std::function<void(Answer)> done) override;
  void post(std::function<void()> fn) override;

  // Configuring answers; each replaces what (name, type) had.
  void set(std::string_view name, Type type, Answer answer);
  void set_mx(std::string_view name, std::vector<MxRecord> records);
  void set_addresses(std::string_view name, Type type, std::vector<std::string> addresses);  // kA / kAaaa
  void set_texts(std::string_view name, std::vector<std::string> texts);
  void set_names(std::string_view name, std::vector<std::string> names);  // PTR, keyed by address
  void set_status(std::string_view name, Type type, Status status, std::string why = "");

  // Holding answers back.
  void hold(bool on) { hold_ = on; }
  std::size_t held() const { return held_.size(); }
  // Posts the held answers (in lookup order, or only those for `name`/`type`); returns how many.
  std::size_t release_all();
  std::size_t release(std::string_view name, Type type);

  // What was asked: counts and the order of lookups.
  std::size_t lookups(std::string_view name, Type type) const;
  std::size_t total_lookups() const { return log_.size(); }
  const std::vector<std::pair<std::string, Type>>& log() const { return log_; }

 private:
  struct Held {
    std::string name;
    Type type;
    Answer answer;
    std::function<void(Answer)> done;
  };
  Answer answer_for(const std::string& name, Type type) const;
  void post_answer(Answer answer, std::function<void(Answer)> done);

  boost::asio::any_io_executor executor_;
  std::map<std::pair<std::string, Type>, Answer> answers_;
  std::vector<std::pair<std::string, Type>> log_;
  std::vector<Held> held_;
  bool hold_ = false;
};

}  // namespace petrel::dns
