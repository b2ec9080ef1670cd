// OpenSSL (Debian's libssl3) for the bundle fetch: TLS client and SHA-256.
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

// SSL_set_tlsext_host_name is a macro, which Swift does not import.
static inline long proxenos_ssl_set_sni(SSL *ssl, const char *name) {
    return SSL_set_tlsext_host_name(ssl, name);
}

// So is SSL_CTX_set_min_proto_version.
static inline long proxenos_ssl_ctx_min_tls12(SSL_CTX *context) {
    return SSL_CTX_set_min_proto_version(context, TLS1_2_VERSION);
}
