#include "guest/oci/archive.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <set>

#include "attest/base/unique_fd.h"
#include "guest/oci/test_util.h"
#include "guest/oci/unpack.h"
#include "tests/support/process.h"

namespace confpod::guest::oci {
namespace {

namespace fs = std::filesystem;
using testutil::TarWriter;

// Every path below `dir` (to show nothing was written next to the rootfs).
std::set<std::string> tree(const std::string& dir) {
  std::set<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    out.insert(fs::relative(e.path(), dir).string());
  return out;
}

struct BuiltImage {
  std::string archive;
  std::string digest;
};

// The real busybox hello image, built once per test binary by examples/hello/build-image.
class GuestOciHelloImage : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::TempDir();
    auto r = testing::run_process({CONFPOD_BUILD_IMAGE, "--out", dir_->path() + "/hello.tar"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto field = [&](const std::string& key) {
      auto pos = r.out.find(key + "=");
      EXPECT_NE(pos, std::string::npos) << r.out;
      auto end = r.out.find('\n', pos);
      return r.out.substr(pos + key.size() + 1, end - pos - key.size() - 1);
    };
    image_.archive = field("archive");
    image_.digest = field("digest");
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }

  // A tampered copy of the hello archive.
  std::string copy_with(const std::string& bytes) {
    std::string path = tmp_.path() + "/variant.tar";
    testutil::write_file(path, bytes);
    return path;
  }
  std::string layer_member(const std::string& archive) {
    // The manifest names the layer; the hello image has exactly one.
    std::string hex = image_.digest.substr(7);
    auto [off, size] = testutil::find_member(archive, "blobs/sha256/" + hex);
    std::string manifest = archive.substr(off, size);
    auto pos = manifest.find("\"layers\"");
    pos = manifest.find("sha256:", pos);
    return "blobs/sha256/" + manifest.substr(pos + 7, 64);
  }

  static testing::TempDir* dir_;
  static BuiltImage image_;
  testing::TempDir tmp_;
};
testing::TempDir* GuestOciHelloImage::dir_ = nullptr;
BuiltImage GuestOciHelloImage::image_;

TEST_F(GuestOciHelloImage, BuildIsReproducible) {
  auto r = testing::run_process({CONFPOD_BUILD_IMAGE, "--out", tmp_.path() + "/again.tar"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("digest=" + image_.digest + "\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("archive=" + tmp_.path() + "/again.tar\n"), std::string::npos) << r.out;
}

TEST_F(GuestOciHelloImage, VerifiesAndUnpacksTheRealImage) {
  fs::create_directory(tmp_.path() + "/rootfs");
  std::string root = tmp_.path() + "/rootfs";
  UnpackStats stats;
  auto cfg = verify_and_unpack(image_.archive, image_.digest, root, {}, &stats);
  ASSERT_TRUE(cfg.ok()) << cfg.error().describe();
  EXPECT_EQ(cfg->entrypoint, std::vector<std::string>{"/bin/hello"});
  EXPECT_TRUE(cfg->cmd.empty());
  EXPECT_EQ(cfg->env, std::vector<std::string>{"PATH=/bin"});
  EXPECT_EQ(cfg->working_dir, "/");
  EXPECT_EQ(stats.layers, 1u);
  EXPECT_EQ(stats.skipped, 0u);

  EXPECT_EQ(testutil::read_file(root + "/bin/busybox"), testutil::read_file("/bin/busybox"));
  EXPECT_EQ(fs::read_symlink(root + "/bin/sh"), "busybox");
  EXPECT_EQ(fs::read_symlink(root + "/bin/sha256sum"), "busybox");
  struct stat st;
  ASSERT_EQ(stat((root + "/bin/hello").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
  ASSERT_EQ(stat((root + "/tmp").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 01777u);
  EXPECT_NE(testutil::read_file(root + "/etc/passwd").find("root:x:0:0:"), std::string::npos);

  // verify() alone agrees.
  auto v = verify(image_.archive, image_.digest);
  ASSERT_TRUE(v.ok()) << v.error().describe();
  EXPECT_EQ(v->entrypoint, cfg->entrypoint);

  // The unpacked image runs: /bin/hello in a chroot (root only).
  if (geteuid() == 0) {
    testutil::write_file(root + "/run/secrets/greeting", "hi");
    auto r = testing::run_process({"/usr/sbin/chroot", root, "/bin/hello"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    // sha256("hi")
    EXPECT_NE(r.out.find("secret sha256: "
                         "8f434346648f6b96df89dda901c5176b10a6d83961dd3c1ac88b59b2dc327aa4\n"),
              std::string::npos)
        << r.out;
    EXPECT_NE(r.out.find("hello from confpod pod "), std::string::npos) << r.out;
    fs::remove(root + "/run/secrets/greeting");
    r = testing::run_process({"/usr/sbin/chroot", root, "/bin/hello"});
    EXPECT_EQ(r.exit_code, 3);
    EXPECT_NE(r.err.find("missing"), std::string::npos) << r.err;
  }
}

TEST_F(GuestOciHelloImage, PaddedLikeABlockDeviceIsAccepted) {
  std::string bytes = testutil::read_file(image_.archive);
  bytes += std::string(1 << 20, '\0');
  std::string path = copy_with(bytes + "stale disk contents beyond the archive");
  fs::create_directory(tmp_.path() + "/rootfs");
  auto cfg = verify_and_unpack(path, image_.digest, tmp_.path() + "/rootfs");
  ASSERT_TRUE(cfg.ok()) << cfg.error().describe();
  EXPECT_TRUE(fs::exists(tmp_.path() + "/rootfs/bin/busybox"));
}

TEST_F(GuestOciHelloImage, FlippedLayerByteRejectedBeforeUnpacking) {
  std::string bytes = testutil::read_file(image_.archive);
  auto [off, size] = testutil::find_member(bytes, layer_member(bytes));
  bytes[off + size / 2] ^= 0x01;
  std::string path = copy_with(bytes);
  fs::create_directory(tmp_.path() + "/rootfs");
  auto r = verify_and_unpack(path, image_.digest, tmp_.path() + "/rootfs");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "oci.digest") << r.error().describe();
  EXPECT_TRUE(fs::is_empty(tmp_.path() + "/rootfs"));
  EXPECT_EQ(verify(path, image_.digest).error().code, "oci.digest");
}

TEST_F(GuestOciHelloImage, OtherPinnedDigestRejected) {
  auto r = verify(image_.archive, "sha256:" + std::string(64, 'a'));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "oci.digest");
  for (const char* bad : {"", "sha256:", "sha512:abcd", "sha256:ABCDEF"}) {
    auto b = verify(image_.archive, bad);
    ASSERT_FALSE(b.ok());
    EXPECT_EQ(b.error().code, "oci.digest") << bad;
  }
}

TEST_F(GuestOciHelloImage, EditedManifestRejected) {
  std::string bytes = testutil::read_file(image_.archive);
  auto [off, size] = testutil::find_member(bytes, "blobs/sha256/" + image_.digest.substr(7));
  std::string manifest = bytes.substr(off, size);
  auto pos = manifest.find("tar+gzip");
  ASSERT_NE(pos, std::string::npos);
  bytes.replace(off + pos, 8, "tar+gzi ");  // same length
  fs::create_directory(tmp_.path() + "/rootfs");
  auto r = verify_and_unpack(copy_with(bytes), image_.digest, tmp_.path() + "/rootfs");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "oci.digest") << r.error().describe();
  EXPECT_TRUE(fs::is_empty(tmp_.path() + "/rootfs"));
}

TEST_F(GuestOciHelloImage, MissingLayerBlobRejected) {
  std::string path = tmp_.path() + "/missing.tar";
  fs::copy_file(image_.archive, path);
  std::string member = layer_member(testutil::read_file(path));
  auto r = testing::run_process({"/bin/tar", "--delete", "-f", path, member});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto v = verify(path, image_.digest);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.error().code, "oci.layout") << v.error().describe();
}

TEST_F(GuestOciHelloImage, TruncatedArchiveRejected) {
  std::string bytes = testutil::read_file(image_.archive);
  for (std::size_t cut : {bytes.size() / 2, std::size_t{1024}, std::size_t{700}}) {
    auto v = verify(copy_with(bytes.substr(0, cut)), image_.digest);
    ASSERT_FALSE(v.ok()) << cut;
    EXPECT_EQ(v.error().code, "oci.tar") << cut << ": " << v.error().describe();
  }
  auto v = verify(copy_with(""), image_.digest);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.error().code, "oci.tar");
}

// Images built here, layer by layer.
class GuestOciBuilt : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = tmp_.path() + "/rootfs";
    fs::create_directory(root_);
  }
  Result<ImageConfig> unpack(const testutil::OciParts& parts, UnpackStats* stats = nullptr) {
    std::string path = tmp_.path() + "/image.tar";
    testutil::write_file(path, testutil::assemble(parts));
    return verify_and_unpack(path, parts.digest(), root_, {}, stats);
  }
  Result<ImageConfig> unpack_layers(const std::vector<std::string>& layers, bool gzip = true,
                                    UnpackStats* stats = nullptr) {
    return unpack(testutil::make_parts(layers, gzip), stats);
  }
  testing::TempDir tmp_;
  std::string root_;
};

TEST_F(GuestOciBuilt, ConfigParsedAndPlainTarLayers) {
  TarWriter l;
  l.file("a", "x");
  auto cfg = unpack_layers({l.finish()}, /*gzip=*/false);
  ASSERT_TRUE(cfg.ok()) << cfg.error().describe();
  EXPECT_EQ(cfg->entrypoint, std::vector<std::string>{"/bin/true"});
  EXPECT_EQ(cfg->cmd, std::vector<std::string>{"-x"});
  EXPECT_EQ(cfg->env, (std::vector<std::string>{"PATH=/bin", "A=b"}));
  EXPECT_EQ(cfg->working_dir, "/w");
  EXPECT_EQ(cfg->user, "1000:1000");
  EXPECT_EQ(testutil::read_file(root_ + "/a"), "x");
}

TEST_F(GuestOciBuilt, DotDotRejectedAndNothingWrittenOutside) {
  auto before = tree(tmp_.path());
  TarWriter l;
  l.file("ok", "1");
  l.file("../x", "escaped");
  auto r = unpack_layers({l.finish()});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "oci.layer") << r.error().describe();
  EXPECT_FALSE(fs::exists(tmp_.path() + "/x"));

  TarWriter l2;
  l2.file("a/b/../../../y", "escaped");
  r = unpack_layers({l2.finish()});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "oci.layer");
  EXPECT_FALSE(fs::exists(tmp_.path() + "/y"));
}

TEST_F(GuestOciBuilt, AbsoluteNamesStayInside) {
  std::string host_path = "/tmp/confpod-oci-abs-" + std::to_string(getpid());
  TarWriter l;
  l.file(host_path, "inside");
  l.file("/etc/x", "inside too");
  l.file("./././rel", "r");
  auto r = unpack_layers({l.finish()});
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_FALSE(fs::exists(host_path));
  EXPECT_EQ(testutil::read_file(root_ + host_path), "inside");
  EXPECT_EQ(testutil::read_file(root_ + "/etc/x"), "inside too");
  EXPECT_EQ(testutil::read_file(root_ + "/rel"), "r");
}

TEST_F(GuestOciBuilt, SymlinkEscapesStayInside) {
  std::string name = "confpod-oci-escape-" + std::to_string(getpid());
  fs::create_directory(tmp_.path() + "/outside");
  TarWriter l;
  l.dir(tmp_.path() + "/outside/");  // the same path inside the rootfs
  l.symlink("to-root", "/");
  l.symlink("up", "../../../../../../..");
  l.symlink("sibling", tmp_.path() + "/outside");
  l.file("to-root/tmp/" + name, "a");
  l.file("up/tmp/" + name + "-up", "b");
  l.file("sibling/f", "c");
  auto r = unpack_layers({l.finish()});
  ASSERT_TRUE(r.ok()) << r.error().describe();
  // Resolved inside the rootfs, the way the container sees these links.
  EXPECT_FALSE(fs::exists("/tmp/" + name));
  EXPECT_FALSE(fs::exists("/tmp/" + name + "-up"));
  EXPECT_TRUE(fs::is_empty(tmp_.path() + "/outside"));
  EXPECT_EQ(testutil::read_file(root_ + "/tmp/" + name), "a");
  EXPECT_EQ(testutil::read_file(root_ + "/tmp/" + name + "-up"), "b");
  EXPECT_EQ(testutil::read_file(root_ + tmp_.path() + "/outside/f"), "c");
  // The links themselves are kept as written.
  EXPECT_EQ(fs::read_symlink(root_ + "/to-root"), "/");

  // A link to a directory that exists only outside: refused, not followed out.
  fs::remove_all(root_);
  fs::create_directory(root_);
  TarWriter l2;
  l2.symlink("dangling", tmp_.path() + "/outside");
  l2.file("dangling/g", "d");
  r = unpack_layers({l2.finish()});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "oci.layer");
  EXPECT_TRUE(fs::is_empty(tmp_.path() + "/outside"));
}

TEST_F(GuestOciBuilt, FileOverASymlinkReplacesTheLinkNotItsTarget) {
  std::string victim = tmp_.path() + "/victim";
  testutil::write_file(victim, "original");
  TarWriter l1;
  l1.symlink("link", victim);
  TarWriter l2;
  l2.file("link", "new");
  auto r = unpack_layers({l1.finish(), l2.finish()});
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ(testutil::read_file(victim), "original");
  EXPECT_FALSE(fs::is_symlink(root_ + "/link"));
  EXPECT_EQ(testutil::read_file(root_ + "/link"), "new");
}

TEST_F(GuestOciBuilt, HardlinksConfinedToTheRootfs) {
  TarWriter l;
  l.file("etc/real", "data");
  l.hardlink("etc/alias", "etc/real");
  l.hardlink("abs", "/etc/real");
  auto r = unpack_layers({l.finish()});
  ASSERT_TRUE(r.ok()) << r.error().describe();
  struct stat a, b;
  ASSERT_EQ(stat((root_ + "/etc/real").c_str(), &a), 0);
  ASSERT_EQ(stat((root_ + "/etc/alias").c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);
  EXPECT_EQ(testutil::read_file(root_ + "/abs"), "data");

  for (std::string target : {"../outside", "/etc/hostname"}) {
    fs::remove_all(root_);
    fs::create_directory(root_);
    TarWriter bad;
    bad.hardlink("h", target);
    auto br = unpack_layers({bad.finish()});
    ASSERT_FALSE(br.ok()) << target;
    EXPECT_EQ(br.error().code, "oci.layer") << target;
    EXPECT_FALSE(fs::exists(root_ + "/h"));
  }
}

TEST_F(GuestOciBuilt, WhiteoutsAndOpaqueDirectoriesAcrossLayers) {
  TarWriter l1;
  l1.dir("a/");
  l1.file("a/f1", "1");
  l1.file("a/f2", "2");
  l1.dir("b/");
  l1.file("b/g", "g");
  l1.dir("c/");
  l1.dir("c/sub/");
  l1.file("c/sub/h", "h");
  l1.file("c/keep-not", "k");
  l1.file("d", "file that becomes a directory");
  l1.dir("e/");
  l1.file("e/x", "dir that becomes a file");
  l1.dir("o/");
  l1.file("o/lower", "l");
  TarWriter l2;
  l2.file("a/.wh.f1", "");
  l2.file(".wh.b", "");
  l2.file("c/.wh..wh..opq", "");
  l2.file("c/new", "n");
  l2.dir("d/");
  l2.file("d/inner", "i");
  l2.file("e", "now a file");
  // Opaque marker after an entry of the same layer: that entry survives.
  l2.file("o/upper", "u");
  l2.file("o/.wh..wh..opq", "");
  l2.file("nowhere/.wh.x", "");  // whiteout in a directory that does not exist: no-op
  UnpackStats stats;
  auto r = unpack_layers({l1.finish(), l2.finish()}, true, &stats);
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_FALSE(fs::exists(root_ + "/a/f1"));
  EXPECT_EQ(testutil::read_file(root_ + "/a/f2"), "2");
  EXPECT_FALSE(fs::exists(root_ + "/b"));
  EXPECT_TRUE(fs::is_directory(root_ + "/c"));
  EXPECT_FALSE(fs::exists(root_ + "/c/sub"));
  EXPECT_FALSE(fs::exists(root_ + "/c/keep-not"));
  EXPECT_EQ(testutil::read_file(root_ + "/c/new"), "n");
  EXPECT_TRUE(fs::is_directory(root_ + "/d"));
  EXPECT_EQ(testutil::read_file(root_ + "/d/inner"), "i");
  EXPECT_EQ(testutil::read_file(root_ + "/e"), "now a file");
  EXPECT_FALSE(fs::exists(root_ + "/o/lower"));
  EXPECT_EQ(testutil::read_file(root_ + "/o/upper"), "u");
  EXPECT_FALSE(fs::exists(root_ + "/nowhere"));
  // Whiteout files are never created.
  for (const auto& p : tree(root_)) EXPECT_EQ(p.find(".wh."), std::string::npos) << p;
  EXPECT_EQ(stats.layers, 2u);
  EXPECT_EQ(stats.whiteouts, 4u);
}

TEST_F(GuestOciBuilt, DevicesAndFifosSkippedAndCounted) {
  TarWriter l;
  l.entry('3', "dev/null", "", 0666);
  l.entry('4', "dev/sda", "", 0660);
  l.entry('6', "fifo", "", 0644);
  l.file("after", "ok");
  UnpackStats stats;
  auto r = unpack_layers({l.finish()}, true, &stats);
  ASSERT_TRUE(r.ok()) << r.error().describe();
  EXPECT_EQ(stats.skipped, 3u);
  EXPECT_FALSE(fs::exists(root_ + "/dev/null"));
  EXPECT_FALSE(fs::exists(root_ + "/fifo"));
  EXPECT_EQ(testutil::read_file(root_ + "/after"), "ok");
}

TEST_F(GuestOciBuilt, ModesKeptIncludingSetuid) {
  TarWriter l;
  l.file("suid", "x", 04755);
  l.dir("ro/", 0555);
  auto r = unpack_layers({l.finish()});
  ASSERT_TRUE(r.ok()) << r.error().describe();
  struct stat st;
  ASSERT_EQ(stat((root_ + "/suid").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 04755u);
  ASSERT_EQ(stat((root_ + "/ro").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0555u);
}

TEST_F(GuestOciBuilt, MediaTypesAndSizesChecked) {
  TarWriter l;
  l.file("a", "x");
  auto parts =
      testutil::make_parts({l.finish()}, true, "application/vnd.oci.image.layer.v1.tar+zstd");
  auto r = unpack(parts);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "oci.media_type");

  // A descriptor size that disagrees with the blob.
  auto p2 = testutil::make_parts({l.finish()});
  std::string layer_size = std::to_string(p2.blobs[0].second.size());
  std::string old_manifest = p2.manifest;
  auto pos = p2.manifest.find("\"size\":" + layer_size + "}]");
  ASSERT_NE(pos, std::string::npos);
  p2.manifest.replace(pos, 7 + layer_size.size(),
                      "\"size\":" + std::to_string(1 + std::stoul(layer_size)));
  p2.manifest_hex = testutil::sha256_hex(p2.manifest);
  p2.blobs.back() = {p2.manifest_hex, p2.manifest};
  p2.index.replace(p2.index.find(testutil::sha256_hex(old_manifest)), 64, p2.manifest_hex);
  r = unpack(p2);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "oci.digest") << r.error().describe();
}

TEST_F(GuestOciBuilt, LayoutChecked) {
  TarWriter l;
  l.file("a", "x");
  auto parts = testutil::make_parts({l.finish()});
  parts.oci_layout = R"({"imageLayoutVersion":"2.0.0"})";
  auto r = unpack(parts);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "oci.layout");

  parts = testutil::make_parts({l.finish()});
  parts.index = "not json";
  r = unpack(parts);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "oci.layout");

  // Nothing of the layer was unpacked by the failed attempts.
  EXPECT_TRUE(fs::is_empty(root_));
}

TEST_F(GuestOciBuilt, LimitsApplied) {
  TarWriter l;
  l.file("a", std::string(10000, 'x'));
  auto parts = testutil::make_parts({l.finish()}, false);
  std::string path = tmp_.path() + "/image.tar";
  testutil::write_file(path, testutil::assemble(parts));
  Limits limits;
  limits.max_unpacked_bytes = 5000;
  auto r = verify_and_unpack(path, parts.digest(), root_, limits);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "oci.too_large");
  limits = {};
  limits.max_blob_bytes = 4096;
  r = verify(path, parts.digest(), limits);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "oci.too_large");
}

// The fuzzer's seed image, written by Python's tarfile (make-fuzz-seeds): a gzip layer and a
// plain pax layer with whiteouts, an opaque directory, a symlink to "/" and a device node.
TEST(GuestOciSeedImage, VerifiesAndUnpacks) {
  testing::TempDir tmp;
  std::string archive = std::string(CONFPOD_OCI_TESTDATA) + "/image.tar";
  std::string bytes = testutil::read_file(archive);
  auto [off, size] = testutil::find_member(bytes, "index.json");
  std::string index = bytes.substr(off, size);
  std::string digest = index.substr(index.find("sha256:"), 71);
  std::string root = tmp.path() + "/rootfs";
  fs::create_directory(root);
  UnpackStats stats;
  auto cfg = verify_and_unpack(archive, digest, root, {}, &stats);
  ASSERT_TRUE(cfg.ok()) << cfg.error().describe();
  EXPECT_EQ(cfg->entrypoint, std::vector<std::string>{"/bin/hello"});
  EXPECT_EQ(stats.layers, 2u);
  EXPECT_EQ(stats.skipped, 1u);
  EXPECT_EQ(stats.hardlinks, 1u);
  EXPECT_EQ(testutil::read_file(root + "/bin/again"), "#!/bin/sh\necho hi\n");
  EXPECT_FALSE(fs::exists(root + "/etc/passwd"));
  EXPECT_FALSE(fs::exists(root + "/opq/lower"));
  EXPECT_EQ(testutil::read_file(root + "/opq/upper"), "u");
  EXPECT_EQ(testutil::read_file(root + "/tmp/through"), "t");
}

// The second hash while unpacking: bytes that differ from what was verified (the host
// rewrote the disk between the passes) fail the call, wherever in the blob they changed.
class GuestOciRehash : public ::testing::Test {
 protected:
  Status unpack_blob(const std::string& blob, const std::string& verified_hex, bool gzip) {
    std::string path = tmp_.path() + "/disk";
    testutil::write_file(path, std::string(1000, 'P') + blob + std::string(700, 'Q'));
    UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
    std::string root = tmp_.path() + "/root" + std::to_string(++n_);
    fs::create_directory(root);
    UniqueFd root_fd(open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    UnpackStats stats;
    LayerUnpacker unpacker(root_fd.get(), Limits{}, stats);
    last_root_ = root;
    return unpack_layer_blob(fd.get(), 1000, blob.size(), gzip, verified_hex, unpacker, "layer 0");
  }
  testing::TempDir tmp_;
  std::string last_root_;
  int n_ = 0;
};

TEST_F(GuestOciRehash, ChangedBytesDetected) {
  TarWriter l;
  l.file("a", "verified content");
  const std::string tar = l.finish(4);
  const std::string hex = testutil::sha256_hex(tar);
  ASSERT_TRUE(unpack_blob(tar, hex, false).ok());
  EXPECT_EQ(testutil::read_file(last_root_ + "/a"), "verified content");

  // Content changed after verification.
  std::string changed = tar;
  changed[512] = 'V';
  Status st = unpack_blob(changed, hex, false);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, "oci.digest");
  EXPECT_NE(st.error().message.find("changed between verification and unpacking"),
            std::string::npos);

  // Only the padding after the end marker changed: every entry applies, the hash still fails.
  changed = tar;
  changed[changed.size() - 1] = 'x';
  st = unpack_blob(changed, hex, false);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, "oci.digest");

  // The gzip trailer (never inflated) changed.
  const std::string gz = testutil::gzip(tar);
  ASSERT_TRUE(unpack_blob(gz, testutil::sha256_hex(gz), true).ok());
  std::string gz_changed = gz;
  gz_changed[gz_changed.size() - 1] ^= 0x40;
  st = unpack_blob(gz_changed, testutil::sha256_hex(gz), true);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, "oci.digest");
}

TEST_F(GuestOciRehash, ShrunkDiskIsAnIoError) {
  TarWriter l;
  l.file("a", "x");
  const std::string tar = l.finish();
  std::string path = tmp_.path() + "/short";
  testutil::write_file(path, tar.substr(0, 600));
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  UniqueFd root_fd(open(tmp_.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  UnpackStats stats;
  LayerUnpacker unpacker(root_fd.get(), Limits{}, stats);
  Status st = unpack_layer_blob(fd.get(), 0, tar.size(), false, testutil::sha256_hex(tar), unpacker,
                                "layer 0");
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, "oci.io");
}

}  // namespace
}  // namespace confpod::guest::oci
