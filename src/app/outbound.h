// app/outbound.h: builds the outbound side from config: the resolver ([dns]) and the remote
// transport ([remote]) with what "this server" means for the MX loop check.
//
// Promise: make_remote_transport() returns a running transport, or an error naming the
// problem (a resolver or TLS setup failure); read_relay_password() names an unreadable file.
// "This server", for RFC 5321 5.1's loop check: our host name, or an address we listen on
// (a wildcard listener: any address of this machine) on the port outbound mail goes to.
// Thread: call from the thread that runs serve().
#pragma once

#include <memory>

#include "base/result.h"
#include "config/config.h"
#include "delivery/remote_transport.h"
#include "queue/spool.h"

namespace petrel::app {

// The smarthost password from remote.relay_password_file ("" when none is configured). Read
// before the server drops privileges, so the file may be root's own, mode 0600.
base::Result<std::string> read_relay_password(const config::RemoteConfig& r);

// `relay_password` as read_relay_password() returned it.
base::Result<std::unique_ptr<delivery::RemoteTransport>> make_remote_transport(const config::Config& c,
                                                                               const queue::Spool& spool,
                                                                               std::string relay_password);

}  // namespace petrel::app
