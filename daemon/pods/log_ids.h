// MESSAGE_IDs of confpodd's pod lifecycle events in the journal (docs/operations.md):
// `journalctl MESSAGE_ID=<id>` finds every pod start, exit, ... of the host. Stable: never
// change one; a new event gets a new id.
#pragma once

namespace confpod::pods {

inline constexpr const char* kMessagePodCreated = "ee8c101191404e1486e7a85fc719aaed";
inline constexpr const char* kMessagePodStarting = "70206d864bd04069b7bbd83a41e76fed";
inline constexpr const char* kMessagePodRunning = "f72833bf7a154449865b2c66ed12364d";
inline constexpr const char* kMessagePodStartFailed = "21ab1b0f33624ef38cc1e4e1a18786b5";
inline constexpr const char* kMessagePodStopping = "f1d9196cb5cb414bb7727ead66133a70";
inline constexpr const char* kMessagePodExited = "b95ba9c7ea2a45368364065b30091018";
inline constexpr const char* kMessagePodRemoved = "d8945fd5fed64dcaad3e88b0e2e0875e";
inline constexpr const char* kMessagePodReattached = "70bfd26300f24986a8e2aa0470b221e0";
// QMP events as QEMU emits them (the VM may still be running when they are logged).
inline constexpr const char* kMessageGuestPanicked = "d0d4cb5b526b4974af7549e525347e4b";
inline constexpr const char* kMessageVmEvent = "7514b97fa41f442289931bd9f34b9cdb";

}  // namespace confpod::pods
