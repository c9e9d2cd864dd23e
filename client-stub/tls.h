/*
 * TLS on a connection's stream (tls.c): the client library runs the
 * TLS engine through memory BIOs on top of the stream's received bytes
 * and its write path, so the broker relays ciphertext only.  Once a
 * stream has TLS, its buffer holds plaintext and the receive window
 * counts TLS records.  Every function here runs with the session lock.
 */
#ifndef CLIENT_TLS_H
#define CLIENT_TLS_H

#include <stddef.h>
#include <stdint.h>

#include "client.h"

/* Records received from the broker; -1 when past the window. */
int	tls_recv(struct stream *, const uint8_t *, size_t);
/* The peer's end of stream. */
void	tls_end(struct stream *);
/*
 * Decrypts what the buffer has room for.  Fails (TB_ETLS, saying why)
 * only once TLS failed and the plaintext before the failure is read.
 */
int	tls_pump(struct stream *, const char *, struct tb_error *);
/* A write's next chunk and room, in plaintext a record carries. */
void	tls_fit(struct tls *, size_t *, size_t *);
/* Seals *len bytes at *data into sealed, which then replaces them. */
int	tls_seal(struct stream *, const char *, const uint8_t **, size_t *,
	    uint8_t *, struct tb_error *);
/*
 * Becomes the connection's one writer, or fails saying why not; a wait
 * for another writer is interruptible or not, as the caller's is.
 */
int	tls_write_begin(tb_client *, tb_handle, const char *, uint64_t, bool,
	    struct tb_error *);
void	tls_write_end(tb_client *, tb_handle);
/* Sends close_notify once; best effort (the stream may be gone after). */
void	tls_close_notify(tb_client *, tb_handle);
void	tls_free(struct tls *);

#endif
