/* fuzz_wire.c -- libFuzzer target: sf_wire_decode, the trust boundary of the farm.
 *
 * Any bytes may arrive in a ZeroMQ frame. Decoding must never crash, leak or
 * meet undefined behaviour (ASan, UBSan), it refuses with SF_E_PROTO and a
 * message, and what it accepts is a message that our own encoder accepts:
 * decode enforces the rules that encode checks, so for any input x
 *
 *   decode(x) ok  =>  encode(decode(x)) ok  =>  decode(encode(decode(x))) ok,
 *   of the same kind, and encoding that again gives the same bytes.
 *
 * Every break of that chain aborts with a line saying which link broke, so
 * libFuzzer reports it with the input. Kind-agnostic on purpose: a new
 * message kind is covered as soon as the decoder knows it.
 */
#include "sf/alloc.h"
#include "sf/wire.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n_bytes);

static void s_fail(const char *what, const sf_wire_msg_t *m, const sf_err_t *err)
{
    fprintf(stderr, "fuzz_wire: %s (%s)%s%s\n", what, sf_wire_kind_name(m->kind), err && err->msg[0] ? ": " : "",
            err ? err->msg : "");
    abort();
}

/* A refused input: SF_E_PROTO (or SF_E_NOMEM) with a message, nothing to clear. */
static void s_check_refusal(sf_rc rc, const sf_wire_msg_t *m, const sf_err_t *err)
{
    if (rc != SF_E_PROTO && rc != SF_E_NOMEM)
        s_fail("decode failed with an unexpected code", m, err);
    if (err->code != rc || !err->msg[0])
        s_fail("decode failed without its error message", m, err);
    if (m->owned_)
        s_fail("a failed decode left memory in the message", m, err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n_bytes)
{
    sf_wire_msg_t msg;
    sf_err_t err = {0};
    sf_rc rc = sf_wire_decode(data, n_bytes, &msg, &err);
    if (rc != SF_OK) {
        s_check_refusal(rc, &msg, &err);
        return 0;
    }
    if (msg.kind == SF_WIRE_RESULT && ((uintptr_t)msg.u.result.pcm & 3u))
        s_fail("decoded pcm is not 4-byte aligned", &msg, NULL);

    uint8_t *enc1 = NULL, *enc2 = NULL;
    size_t n_enc1 = 0, n_enc2 = 0;
    if (sf_wire_encode(&msg, &enc1, &n_enc1, &err) != SF_OK)
        s_fail("a decoded message does not encode", &msg, &err);
    sf_wire_msg_t again;
    if (sf_wire_decode(enc1, n_enc1, &again, &err) != SF_OK)
        s_fail("a re-encoded message does not decode", &msg, &err);
    if (again.kind != msg.kind)
        s_fail("the kind changed in the round trip", &msg, NULL);
    if (sf_wire_encode(&again, &enc2, &n_enc2, &err) != SF_OK)
        s_fail("a message decoded twice does not encode", &again, &err);
    if (n_enc1 != n_enc2 || memcmp(enc1, enc2, n_enc1) != 0)
        s_fail("encoding a decoded message is not stable", &msg, NULL);

    sf_free(enc1);
    sf_free(enc2);
    sf_wire_msg_clear(&again);
    sf_wire_msg_clear(&msg);
    return 0;
}
