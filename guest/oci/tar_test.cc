#include "guest/oci/tar.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <map>

#include "attest/base/unique_fd.h"
#include "guest/oci/test_util.h"
#include "tests/support/process.h"

namespace confpod::guest::oci {
namespace {

using testutil::TarWriter;

struct Read {
  TarEntry entry;
  std::string data;
};

Result<std::vector<Read>> read_all_entries(ByteSource& src, TarLimits limits = {}) {
  TarReader tar(src, limits);
  std::vector<Read> out;
  for (;;) {
    CONFPOD_ASSIGN_OR_RETURN(auto e, tar.next());
    if (!e) break;
    Read r{*e, {}};
    CONFPOD_ASSIGN_OR_RETURN(r.data, tar.read_all(1 << 20));
    out.push_back(std::move(r));
  }
  return out;
}

Result<std::vector<Read>> read_string(const std::string& bytes, TarLimits limits = {}) {
  MemorySource src(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
  return read_all_entries(src, limits);
}

// GNU tar's own archives, in its GNU and POSIX pax formats, with names and a link target
// beyond the 100/155-byte ustar fields, read back from a file descriptor.
class GuestOciGnuTarFormats : public ::testing::TestWithParam<std::string> {};

TEST_P(GuestOciGnuTarFormats, LongNamesLinksAndContents) {
  testing::TempDir tmp;
  std::string long_dir = "d/" + std::string(150, 'a') + "/" + std::string(120, 'b');
  std::string long_file = long_dir + "/" + std::string(110, 'f');
  std::filesystem::create_directories(tmp.path() + "/src/" + long_dir);
  testutil::write_file(tmp.path() + "/src/" + long_file, "long content\n");
  testutil::write_file(tmp.path() + "/src/short", std::string(70000, 'z'));
  std::filesystem::create_symlink(std::string(180, 'T'), tmp.path() + "/src/link");
  std::filesystem::create_hard_link(tmp.path() + "/src/short", tmp.path() + "/src/hard");
  auto r = testing::run_process({"/bin/tar", "--format=" + GetParam(), "--sort=name", "-C",
                                 tmp.path() + "/src", "-cf", tmp.path() + "/a.tar", "."});
  ASSERT_EQ(r.exit_code, 0) << r.err;

  UniqueFd fd(open((tmp.path() + "/a.tar").c_str(), O_RDONLY));
  ASSERT_TRUE(fd);
  FdSource src(fd.get(), 0);
  auto entries = read_all_entries(src);
  ASSERT_TRUE(entries.ok()) << entries.error().describe();
  std::map<std::string, Read> by_path;
  for (auto& e : *entries) by_path[e.entry.path] = e;
  ASSERT_TRUE(by_path.count("./" + long_file)) << "long name lost";
  EXPECT_EQ(by_path["./" + long_file].data, "long content\n");
  EXPECT_EQ(by_path["./" + long_file].entry.type, TarType::kFile);
  EXPECT_EQ(by_path["./" + long_dir + "/"].entry.type, TarType::kDirectory);
  EXPECT_EQ(by_path["./link"].entry.type, TarType::kSymlink);
  EXPECT_EQ(by_path["./link"].entry.linkpath, std::string(180, 'T'));
  // --sort=name: "hard" comes first and carries the data; "short" links to it.
  EXPECT_EQ(by_path["./hard"].data, std::string(70000, 'z'));
  EXPECT_EQ(by_path["./short"].entry.type, TarType::kHardlink);
  EXPECT_EQ(by_path["./short"].entry.linkpath, "./hard");
  EXPECT_EQ(by_path["./short"].data, "");
}

INSTANTIATE_TEST_SUITE_P(Formats, GuestOciGnuTarFormats, ::testing::Values("gnu", "posix"),
                         [](const auto& info) { return info.param; });

TEST(GuestOciTar, UstarPrefixAndPaxOverrides) {
  TarWriter w;
  std::string pax_path = std::string(300, 'p') + "/x";
  std::string rec = " path=" + pax_path + "\n";
  std::size_t len = rec.size() + 3;  // 3-digit length
  std::string pax = std::to_string(len) + rec;
  ASSERT_EQ(pax.size(), len);
  w.entry('x', "PaxHeaders/x", pax, 0644);
  w.file("short-name", "data");
  auto r = read_string(w.finish());
  ASSERT_TRUE(r.ok()) << r.error().describe();
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].entry.path, pax_path);
  EXPECT_EQ((*r)[0].data, "data");
}

TEST(GuestOciTar, StopsAtEndMarkerIgnoringWhatFollows) {
  TarWriter w;
  w.file("a", "1");
  std::string bytes = w.finish() + std::string(1 << 20, '\0') + "garbage after the archive";
  MemorySource src(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
  TarReader tar(src);
  auto e = tar.next();
  ASSERT_TRUE(e.ok() && e->has_value());
  auto end = tar.next();
  ASSERT_TRUE(end.ok()) << end.error().describe();
  EXPECT_FALSE(end->has_value());
  EXPECT_EQ(tar.position(), 512u * 4);  // header, data, two zero blocks: nothing more read
}

TEST(GuestOciTar, ChecksumMismatchRejected) {
  TarWriter w;
  w.file("a", "1");
  std::string bytes = w.finish();
  bytes[0] = 'b';
  auto r = read_string(bytes);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "oci.tar");
  EXPECT_NE(r.error().message.find("checksum"), std::string::npos);
}

TEST(GuestOciTar, TruncationsRejected) {
  TarWriter w;
  w.file("a", std::string(1000, 'x'));
  std::string full = w.finish();
  for (std::size_t cut : {std::size_t{0}, std::size_t{100}, std::size_t{512}, std::size_t{900},
                          std::size_t{1536}, full.size() - 512, full.size() - 1}) {
    auto r = read_string(full.substr(0, cut));
    ASSERT_FALSE(r.ok()) << "cut at " << cut;
    EXPECT_EQ(r.error().code, "oci.tar") << "cut at " << cut;
  }
}

TEST(GuestOciTar, LoneZeroBlockRejected) {
  TarWriter w;
  w.file("a", "1");
  std::string bytes = w.bytes() + std::string(512, '\0');
  TarWriter w2;
  w2.file("b", "2");
  bytes += w2.finish();
  auto r = read_string(bytes);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "oci.tar");
}

TEST(GuestOciTar, SizesAreBounded) {
  TarWriter w;
  w.file("big", std::string(4096, 'x'));
  TarLimits limits;
  limits.max_entry_bytes = 4095;
  auto r = read_string(w.finish(), limits);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "oci.too_large");

  TarWriter w2;
  w2.entry('L', "././@LongLink", std::string(5000, 'n') + '\0', 0644);
  w2.file("x", "");
  r = read_string(w2.finish());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "oci.too_large");
}

TEST(GuestOciTar, HeaderOnlyTypesCarryNoData) {
  TarWriter w;
  w.entry('5', "dir/", "", 0755);
  w.entry('3', "dev/null", "", 0666);
  w.entry('6', "fifo", "", 0644);
  w.file("after", "ok");
  auto r = read_string(w.finish());
  ASSERT_TRUE(r.ok()) << r.error().describe();
  ASSERT_EQ(r->size(), 4u);
  EXPECT_EQ((*r)[1].entry.type, TarType::kCharDevice);
  EXPECT_EQ((*r)[2].entry.type, TarType::kFifo);
  EXPECT_EQ((*r)[3].data, "ok");
}

TEST(GuestOciTar, BadPaxRecordRejected) {
  TarWriter w;
  w.entry('x', "PaxHeaders/x", "99 path=x\n", 0644);
  w.file("a", "");
  auto r = read_string(w.finish());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "oci.tar");
}

TEST(GuestOciGzip, InflatesConcatenatedMembersAndRejectsCorruption) {
  std::string a(100000, 'a'), b = "tail";
  std::string gz = testutil::gzip(a) + testutil::gzip(b);
  MemorySource src(reinterpret_cast<const std::uint8_t*>(gz.data()), gz.size());
  GzipSource g(src);
  std::string out;
  std::uint8_t buf[4096];
  for (;;) {
    auto n = g.read(buf, sizeof buf);
    ASSERT_TRUE(n.ok()) << n.error().describe();
    if (*n == 0) break;
    out.append(reinterpret_cast<char*>(buf), *n);
  }
  EXPECT_EQ(out, a + b);

  std::string truncated = testutil::gzip(a).substr(0, 40);
  MemorySource src2(reinterpret_cast<const std::uint8_t*>(truncated.data()), truncated.size());
  GzipSource g2(src2);
  Status st = ok_status();
  for (;;) {
    auto n = g2.read(buf, sizeof buf);
    if (!n.ok()) {
      st = n.take_error();
      break;
    }
    if (*n == 0) break;
  }
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, "oci.layer");

  std::string garbage = "not gzip at all, not even close";
  MemorySource src3(reinterpret_cast<const std::uint8_t*>(garbage.data()), garbage.size());
  GzipSource g3(src3);
  auto n = g3.read(buf, sizeof buf);
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.error().code, "oci.layer");
}

}  // namespace
}  // namespace confpod::guest::oci
