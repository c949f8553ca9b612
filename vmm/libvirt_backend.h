// A small RAII layer over libvirt: a connection and the domains defined through it.
// Errors carry libvirt's own message (code "vmm.libvirt.<operation>").
#pragma once

#include <libvirt/libvirt.h>

#include <memory>
#include <string>
#include <utility>

#include "attest/base/result.h"

namespace confpod::vmm {

struct VirConnectCloser {
  void operator()(virConnectPtr conn) const { virConnectClose(conn); }
};
struct VirDomainFreer {
  void operator()(virDomainPtr domain) const { virDomainFree(domain); }
};
using VirConnectHandle = std::unique_ptr<virConnect, VirConnectCloser>;
using VirDomainHandle = std::unique_ptr<virDomain, VirDomainFreer>;

enum class DomainState {
  kNoState,
  kRunning,
  kBlocked,
  kPaused,
  kShutdown,
  kShutoff,
  kCrashed,
  kSuspended,
  kUnknown
};
std::string to_string(DomainState state);

class LibvirtDomain {
 public:
  explicit LibvirtDomain(VirDomainHandle handle) : handle_(std::move(handle)) {}

  std::string name() const;
  Status start();                     // virDomainCreate         "vmm.libvirt.start"
  Status destroy();                   // virDomainDestroy (hard)  "vmm.libvirt.destroy"
  Status undefine();                  // virDomainUndefine        "vmm.libvirt.undefine"
  Status shutdown();                  // virDomainShutdown (ACPI) "vmm.libvirt.shutdown"
  Result<DomainState> state() const;  //           "vmm.libvirt.state"
  // virDomainGetState as libvirt gives it: (VIR_DOMAIN_*, its reason). "vmm.libvirt.state"
  Result<std::pair<int, int>> raw_state() const;
  Result<std::string> xml() const;  // live XML  "vmm.libvirt.xml"
  virDomainPtr get() const { return handle_.get(); }

 private:
  VirDomainHandle handle_;
};

class LibvirtConnection {
 public:
  // uri e.g. "qemu:///system", or "test:///default" in tests. "vmm.libvirt.connect"
  static Result<LibvirtConnection> connect(const std::string& uri);

  // Persistently defines a domain from XML. "vmm.libvirt.define"
  Result<LibvirtDomain> define(const std::string& xml);
  // Looks up a defined domain by name. "vmm.libvirt.no_domain" when libvirt has none of that
  // name, "vmm.libvirt.lookup" when the lookup itself failed (the connection, an access check).
  Result<LibvirtDomain> lookup(const std::string& name);
  virConnectPtr get() const { return conn_.get(); }

 private:
  explicit LibvirtConnection(VirConnectHandle conn) : conn_(std::move(conn)) {}
  VirConnectHandle conn_;
};

}  // namespace confpod::vmm
