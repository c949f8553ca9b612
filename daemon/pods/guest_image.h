// The guest image confpodd boots when confpod.toml names none: built on this host by
// guest/image/build-initramfs (busybox, init, confpod-agent and its libraries, this host's
// Debian kernel and modules). The builder keys its output on the SHA-256 of every input, so
// building again with the same inputs is a lookup, and a changed agent or kernel gives a new
// file (and so a new expected launch measurement).
//
// Errors: "guest.image" (the builder is missing, fails, times out, or prints no paths; the
// message carries the end of its stderr).
#pragma once

#include <chrono>
#include <string>

#include "attest/base/result.h"

namespace confpod::pods {

struct GuestImagePaths {
  std::string kernel;
  std::string initrd;
};

struct GuestImageBuild {
  std::string builder;  // build-initramfs
  std::string agent;    // the confpod-agent binary to put in the image
  std::string out_dir;  // where the image (and its cache) goes
  std::chrono::seconds timeout{300};
};

// Runs the builder and returns what it printed (kernel=, initrd=).
Result<GuestImagePaths> build_guest_image(const GuestImageBuild& build);

}  // namespace confpod::pods
