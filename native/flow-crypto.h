// ChaCha20-Poly1305 (RFC 8439, 96-bit nonce) and the rekey ratchet of the secure edges'
// transport phase (src/edge/session.ts, aead.ts), for the native flow path. OpenSSL from
// Node's own headers and binary (Node exports libcrypto's symbols), so nothing is linked in.
// The bytes are libsodium's and node:crypto's: Noise nonces (4 zero bytes, then the 64-bit
// counter little-endian), the tag after the ciphertext.
#pragma once
#include <cstddef>
#include <cstdint>

constexpr size_t kFlowKeyLen = 32;
constexpr size_t kFlowTagLen = 16;

// Two cipher contexts (seal, open), reused for every packet: a context keeps its key schedule
// while the key stays the same, so a packet only sets its nonce. Not thread-safe: one per thread.
class FlowAead {
 public:
  FlowAead();
  ~FlowAead();
  FlowAead(const FlowAead&) = delete;
  FlowAead& operator=(const FlowAead&) = delete;

  // Encrypts pt (len bytes) into out and writes the tag after it; pt may be out (in place). False only if OpenSSL fails.
  bool Seal(const uint8_t key[kFlowKeyLen], uint64_t counter, const uint8_t* ad, size_t adLen, const uint8_t* pt, size_t len, uint8_t* out);
  // Verifies and decrypts ct || tag (len bytes with the tag) into out (len - 16 bytes; may be ct).
  // False if it does not authenticate; out is then zeroed.
  bool Open(const uint8_t key[kFlowKeyLen], uint64_t counter, const uint8_t* ad, size_t adLen, const uint8_t* ct, size_t len, uint8_t* out);

 private:
  // Points ctx at key (a full init only when the key changed) and nonce n.
  bool Init(struct evp_cipher_ctx_st* ctx, uint8_t* cached, bool* valid, bool enc, const uint8_t key[kFlowKeyLen], uint64_t n);
  struct evp_cipher_st* cipher_ = nullptr;  // fetched once (OpenSSL 3), not on every init
  struct evp_cipher_ctx_st* enc_;
  struct evp_cipher_ctx_st* dec_;
  uint8_t encKey_[kFlowKeyLen] = {}, decKey_[kFlowKeyLen] = {};
  bool encValid_ = false, decValid_ = false;
};

// The next epoch's key: the first output of the Noise HKDF of k with the rekey label (session.ts nextEpochKey).
bool FlowNextEpochKey(const uint8_t k[kFlowKeyLen], uint8_t out[kFlowKeyLen]);

// Overwrites a key so the compiler cannot drop the write.
void FlowWipe(uint8_t* p, size_t n);
