// The D-Bus names of confpodd's API (docs/dbus-api.md), in one place for the daemon, its
// tests and anything else that calls it. Only constants: no library to link.
#pragma once

namespace confpod::bus {

inline constexpr const char* kBusName = "org.confpod1";
inline constexpr const char* kManagerPath = "/org/confpod1";
inline constexpr const char* kManagerInterface = "org.confpod1.Manager";
inline constexpr const char* kPodPathPrefix = "/org/confpod1/pod";
inline constexpr const char* kPodInterface = "org.confpod1.Pod";
inline constexpr const char* kBrokerInterface = "org.confpod1.Broker";
inline constexpr const char* kNetworkPathPrefix = "/org/confpod1/network";
inline constexpr const char* kNetworkInterface = "org.confpod1.Network";

}  // namespace confpod::bus
