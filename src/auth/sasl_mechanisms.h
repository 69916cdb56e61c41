// auth/sasl_mechanisms.h: constructors of the concrete mechanisms, for SaslServer and tests.
// Internal to auth/; everyone else starts mechanisms through SaslServer::start().
#pragma once

#include <memory>
#include <string>

#include "auth/sasl.h"

namespace petrel::auth {

std::unique_ptr<SaslMechanism> make_plain(CredentialSource& credentials);
std::unique_ptr<SaslMechanism> make_login(CredentialSource& credentials);
// `server_nonce`: printable ASCII without ','. `fake_salt_secret`: see SaslOptions.
std::unique_ptr<SaslMechanism> make_scram_sha256(CredentialSource& credentials, std::string server_nonce,
                                                 std::string fake_salt_secret);
// `challenge`: the whole challenge, e.g. "<1896.697170952@postoffice.reston.mci.net>".
std::unique_ptr<SaslMechanism> make_cram_md5(CredentialSource& credentials, std::string challenge);

// Shared by the mechanisms: the failure results, so that every mechanism says the same.
SaslStep sasl_continue(std::string challenge);
SaslStep sasl_success(std::string authcid);
// `authcid`: the name the client tried, when known, so callers can count failures per account.
SaslStep sasl_failed(std::string reason, std::string authcid = {});
SaslStep sasl_malformed(std::string reason);
SaslStep sasl_temporary(std::string reason);

}  // namespace petrel::auth
