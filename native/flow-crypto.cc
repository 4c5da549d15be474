// See flow-crypto.h.
#include "flow-crypto.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/opensslv.h>

#include <climits>
#include <cstring>

namespace {

constexpr char kRekeyLabel[] = "brunet-ts rekey";

void Nonce(uint64_t n, uint8_t out[12]) {
  memset(out, 0, 4);
  for (int i = 0; i < 8; i++) out[4 + i] = static_cast<uint8_t>(n >> (8 * i));
}

bool Hmac(const uint8_t* key, size_t keyLen, const uint8_t* data, size_t len, uint8_t out[32]) {
  unsigned int outLen = 0;
  return HMAC(EVP_sha256(), key, static_cast<int>(keyLen), data, len, out, &outLen) != nullptr && outLen == 32;
}

}  // namespace

FlowAead::FlowAead() : enc_(EVP_CIPHER_CTX_new()), dec_(EVP_CIPHER_CTX_new()) {
#if OPENSSL_VERSION_MAJOR >= 3
  cipher_ = EVP_CIPHER_fetch(nullptr, "ChaCha20-Poly1305", nullptr);
#endif
}

FlowAead::~FlowAead() {
  EVP_CIPHER_CTX_free(enc_);
  EVP_CIPHER_CTX_free(dec_);
#if OPENSSL_VERSION_MAJOR >= 3
  EVP_CIPHER_free(cipher_);
#endif
  OPENSSL_cleanse(encKey_, sizeof encKey_);
  OPENSSL_cleanse(decKey_, sizeof decKey_);
}

bool FlowAead::Init(EVP_CIPHER_CTX* ctx, uint8_t* cached, bool* valid, bool enc, const uint8_t key[kFlowKeyLen], uint64_t n) {
  uint8_t nonce[12];
  Nonce(n, nonce);
  if (ctx == nullptr) return false;
  const EVP_CIPHER* c = cipher_ != nullptr ? cipher_ : EVP_chacha20_poly1305();
  const bool same = *valid && CRYPTO_memcmp(cached, key, kFlowKeyLen) == 0;
  const int rc = same ? EVP_CipherInit_ex(ctx, nullptr, nullptr, nullptr, nonce, enc ? 1 : 0) : EVP_CipherInit_ex(ctx, c, nullptr, key, nonce, enc ? 1 : 0);
  *valid = rc == 1;
  if (*valid && !same) memcpy(cached, key, kFlowKeyLen);
  return *valid;
}

bool FlowAead::Seal(const uint8_t key[kFlowKeyLen], uint64_t counter, const uint8_t* ad, size_t adLen, const uint8_t* pt, size_t len, uint8_t* out) {
  int l = 0;
  if (len > INT_MAX || !Init(enc_, encKey_, &encValid_, true, key, counter)) return false;
  if (adLen > 0 && EVP_EncryptUpdate(enc_, nullptr, &l, ad, static_cast<int>(adLen)) != 1) return false;
  if (len > 0 && EVP_EncryptUpdate(enc_, out, &l, pt, static_cast<int>(len)) != 1) return false;
  if (EVP_EncryptFinal_ex(enc_, out + len, &l) != 1) return false;
  return EVP_CIPHER_CTX_ctrl(enc_, EVP_CTRL_AEAD_GET_TAG, kFlowTagLen, out + len) == 1;
}

bool FlowAead::Open(const uint8_t key[kFlowKeyLen], uint64_t counter, const uint8_t* ad, size_t adLen, const uint8_t* ct, size_t len, uint8_t* out) {
  if (len < kFlowTagLen || len > INT_MAX) return false;
  const size_t ptLen = len - kFlowTagLen;
  uint8_t tag[kFlowTagLen];
  memcpy(tag, ct + ptLen, kFlowTagLen);  // before an in-place decrypt can touch it
  int l = 0;
  bool ok = Init(dec_, decKey_, &decValid_, false, key, counter) &&
            EVP_CIPHER_CTX_ctrl(dec_, EVP_CTRL_AEAD_SET_TAG, kFlowTagLen, tag) == 1 &&
            (adLen == 0 || EVP_DecryptUpdate(dec_, nullptr, &l, ad, static_cast<int>(adLen)) == 1) &&
            (ptLen == 0 || EVP_DecryptUpdate(dec_, out, &l, ct, static_cast<int>(ptLen)) == 1) &&
            EVP_DecryptFinal_ex(dec_, out + ptLen, &l) == 1;
  if (!ok) OPENSSL_cleanse(out, ptLen);
  return ok;
}

bool FlowNextEpochKey(const uint8_t k[kFlowKeyLen], uint8_t out[kFlowKeyLen]) {
  uint8_t temp[32];
  const uint8_t one = 1;
  bool ok = Hmac(k, kFlowKeyLen, reinterpret_cast<const uint8_t*>(kRekeyLabel), sizeof kRekeyLabel - 1, temp) &&
            Hmac(temp, sizeof temp, &one, 1, out);
  OPENSSL_cleanse(temp, sizeof temp);
  return ok;
}

void FlowWipe(uint8_t* p, size_t n) { OPENSSL_cleanse(p, n); }
