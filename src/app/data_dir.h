// app/data_dir.h: how every `petrel` command reaches the data directory, and what the server
// does as root before it drops privileges.
//
// What it is: enter_data_dir() makes the data directory the process's working directory
// (fchdir on a descriptor opened once) and returns ".", the path every component uses from
// then on. The server works relative to that descriptor, as Postfix works in its queue
// directory: nothing needs to search the directories above it, so a data directory under a
// mode-0700 folder (a clone in /root, a `mktemp -d`) works after the server has become its
// unprivileged user. Relative paths in the config are made absolute when it is loaded
// (config.h), so they keep their meaning.
// Promise: a directory made here by root is given at once to server.user (fchown on the new
// directory's descriptor), so the files the commands create afterwards belong to the user the
// server runs as. Nothing here follows a link that the service user could have planted:
// every step as root goes through descriptors opened with O_NOFOLLOW, changes owners with
// fchown on those descriptors, and never writes into a directory the service user owns.
// Not done here: dropping privileges (serve.cc, common.cc), the files' contents.
// Failure: a message naming the path and the reason; callers print it and exit.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

#include "base/result.h"
#include "config/config.h"

namespace petrel::app {

// The unprivileged user the server runs as, when running as root and server.user names one.
struct RunUser {
  uid_t uid = 0;
  gid_t gid = 0;
};
// nullopt when not root, or server.user is empty, "root" or unknown (serve.cc reports those).
std::optional<RunUser> lookup_run_user(const config::Config& config);

// Enters config.server.data_dir (see above), creating it (0750; missing parents 0755) when
// `create` is set. Returns ".".
base::Result<std::string> enter_data_dir(const config::Config& config, bool create);

// As root, inside the data directory (after enter_data_dir): gives what root owns in it to
// `user` (a tree left by an older version, or by a command run as root before the server
// first started). Walks by descriptor (openat with O_NOFOLLOW, fchown), skips links and
// special files, and a regular file with more than one link. A tree whose top the user
// already owns is not walked.
base::Status hand_over_data_dir(RunUser user);

// Opens (appending) the log file as the invoking user, before privileges drop: never through
// a symbolic link, only a regular file with a single link. A file created here is given to
// `user` when set (fchown on the descriptor); an existing one keeps its owner, and the server
// keeps writing through this descriptor. Returns the descriptor (close-on-exec).
base::Result<int> open_log_file(const std::string& path, std::optional<RunUser> user);

}  // namespace petrel::app
