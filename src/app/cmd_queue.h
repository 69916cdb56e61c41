// app/cmd_queue.h: `petrel queue list|show`: look into the spool from the command line.
//
//   petrel queue list [-c FILE]              one line per message: id, age, size, sender,
//                                            recipients; then the count
//   petrel queue show ID [--body] [-c FILE]  the envelope, then the header section; with
//                                            --body the whole message as stored (CRLF)
//
// Read-only: the spool is opened without its lock and nothing is changed, so these run safely
// beside a running server (a batch being written at that instant is simply not shown).
// Peer-supplied text (addresses, HELO) is shown with control and non-ASCII bytes as \xHH.
// Exit codes: 0 ok; 1 the queue cannot be read, the id is unknown or the body is damaged, with
// one line "petrel: ..." on stderr; 2 the config is bad.
#pragma once
#include <CLI/CLI.hpp>
namespace petrel::app {
void register_queue_commands(CLI::App& app);
}  // namespace petrel::app
