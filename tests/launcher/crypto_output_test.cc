// SHA-256/HMAC against published vectors; output relay line handling and prefixes.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include "strun/launcher/crypto.h"
#include "strun/launcher/output.h"

namespace strun::launcher {
namespace {

TEST(Crypto, Sha256Vectors) {
  EXPECT_EQ(ToHex(DigestBytes(Sha256(""))),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(ToHex(DigestBytes(Sha256("abc"))),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(ToHex(DigestBytes(Sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"))),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(ToHex(DigestBytes(Sha256(std::string(1000000, 'a')))),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Crypto, HmacRfc4231) {
  EXPECT_EQ(ToHex(DigestBytes(HmacSha256(std::string(20, '\x0b'), "Hi There"))),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  EXPECT_EQ(ToHex(DigestBytes(HmacSha256("Jefe", "what do ya want for nothing?"))),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  EXPECT_EQ(
      ToHex(DigestBytes(HmacSha256(std::string(131, '\xaa'),
                                   "Test Using Larger Than Block-Size Key - Hash Key First"))),
      "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
  EXPECT_TRUE(DigestEqual("abc", "abc"));
  EXPECT_FALSE(DigestEqual("abc", "abd"));
  EXPECT_FALSE(DigestEqual("abc", "ab"));
  auto r = RandomBytes(32);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->size(), 32u);
  EXPECT_NE(*r, *RandomBytes(32));
}

TEST(Output, Prefixes) {
  EXPECT_EQ(LinePrefix("", "default", 3, 1), "[default3]:");
  EXPECT_EQ(LinePrefix("${role_name}-${rank}-${local_rank}|", "r", 3, 1), "r-3-1|");
  EXPECT_EQ(LinePrefix("$rank $$ $unknown ${x", "r", 3, 1), "3 $ $unknown ${x");
}

std::string ReadAll(int fd) {
  std::string s;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) s.append(buf, size_t(n));
  return s;
}

TEST(Output, LinesArePrefixedFilesAreRaw) {
  int console[2];
  ASSERT_EQ(pipe(console), 0);
  char tmpl[] = "/tmp/strun_output_test_XXXXXX";
  int file = mkstemp(tmpl);
  ASSERT_GE(file, 0);
  {
    OutputRelay r("[p]:", console[1], dup(file), 2);
    std::string a = "one\ntw", b = "o\nthree";
    r.Feed(a.data(), a.size());
    r.Feed(b.data(), b.size());
    r.Finish();
    EXPECT_EQ(r.Tail(), (std::vector<std::string>{"two", "three"}));
  }
  close(console[1]);
  EXPECT_EQ(ReadAll(console[0]), "[p]:one\n[p]:two\n[p]:three\n");
  lseek(file, 0, SEEK_SET);
  EXPECT_EQ(ReadAll(file), "one\ntwo\nthree");
  close(file);
  close(console[0]);
  unlink(tmpl);
}

}  // namespace
}  // namespace strun::launcher
