// app/cmd_sendmail.h: `petrel sendmail` (and petrel run as "sendmail"): the sendmail command
// line that cron, scripts and mail programs expect, queueing through the running server's
// local submission socket (submit_socket.h).
#pragma once

namespace petrel::app {

// argv[0] is the program name ("sendmail" or "petrel sendmail" minus "petrel"). Returns the
// exit code: 0 queued; 64 EX_USAGE; 65 EX_DATAERR; 67 EX_NOUSER; 75 EX_TEMPFAIL (cannot queue
// now: server not running, storage trouble); 78 EX_CONFIG.
int sendmail_main(int argc, char** argv);

}  // namespace petrel::app
