// fake_resolver.cc: answers from a map, posted like the real resolver's (fake_resolver.h).
#include "dns/fake_resolver.h"

#include <boost/asio/post.hpp>

#include "dns/rdata.h"

namespace petrel::dns {

void FakeResolver::lookup(std::string name, Type type, std::function<void(Answer)> done) {
  std::string key = normalize_name(name);
  log_.emplace_back(key, type);
  Answer answer = answer_for(key, type);
  if (hold_) {
    held_.push_back(Held{std::move(key), type, std::move(answer), std::move(done)});
    return;
  }
  post_answer(std::move(answer), std::move(done));
}

Answer FakeResolver::answer_for(const std::string& name, Type type) const {
  if (auto it = answers_.find({name, type}); it != answers_.end()) return it->second;
  Answer a;
  bool exists = false;
  for (auto it = answers_.lower_bound({name, Type::kA}); it != answers_.end() && it->first.first == name; ++it) {
    exists = exists || it->second.status != Status::kNxDomain;
  }
  a.status = exists ? Status::kNoData : Status::kNxDomain;
  a.why = exists ? "no data" : "NXDOMAIN";
  return a;
}

void FakeResolver::post(std::function<void()> fn) { boost::asio::post(executor_, std::move(fn)); }

void FakeResolver::post_answer(Answer answer, std::function<void(Answer)> done) {
  boost::asio::post(executor_, [answer = std::move(answer), done = std::move(done)]() mutable { done(std::move(answer)); });
}

void FakeResolver::set(std::string_view name, Type type, Answer answer) {
  answers_[{normalize_name(name), type}] = std::move(answer);
}

void FakeResolver::set_mx(std::string_view name, std::vector<MxRecord> records) {
  Answer a;
  a.status = records.empty() ? Status::kNoData : Status::kOk;
  a.mx = std::move(records);
  set(name, Type::kMx, std::move(a));
}

void FakeResolver::set_addresses(std::string_view name, Type type, std::vector<std::string> addresses) {
  Answer a;
  a.status = addresses.empty() ? Status::kNoData : Status::kOk;
  a.addresses = std::move(addresses);
  set(name, type, std::move(a));
}

void FakeResolver::set_texts(std::string_view name, std::vector<std::string> texts) {
  Answer a;
  a.status = texts.empty() ? Status::kNoData : Status::kOk;
  a.texts = std::move(texts);
  set(name, Type::kTxt, std::move(a));
}

void FakeResolver::set_names(std::string_view name, std::vector<std::string> names) {
  Answer a;
  a.status = names.empty() ? Status::kNoData : Status::kOk;
  a.names = std::move(names);
  set(name, Type::kPtr, std::move(a));
}

void FakeResolver::set_status(std::string_view name, Type type, Status status, std::string why) {
  Answer a;
  a.status = status;
  a.why = why.empty() ? std::string(status_name(status)) : std::move(why);
  set(name, type, std::move(a));
}

std::size_t FakeResolver::release_all() {
  auto held = std::move(held_);
  held_.clear();
  for (auto& h : held) post_answer(std::move(h.answer), std::move(h.done));
  return held.size();
}

std::size_t FakeResolver::release(std::string_view name, Type type) {
  std::string key = normalize_name(name);
  std::size_t n = 0;
  for (auto it = held_.begin(); it != held_.end();) {
    if (it->name == key && it->type == type) {
      post_answer(std::move(it->answer), std::move(it->done));
      it = held_.erase(it);
      ++n;
    } else {
      ++it;
    }
  }
  return n;
}

std::size_t FakeResolver::lookups(std::string_view name, Type type) const {
  std::string key = normalize_name(name);
  std::size_t n = 0;
  for (const auto& [k, t] : log_) n += (k == key && t == type);
  return n;
}

}  // namespace petrel::dns
