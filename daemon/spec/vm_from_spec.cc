#include "daemon/spec/vm_from_spec.h"

#include <algorithm>

#include "attest/crypto/crypto.h"
#include "daemon/spec/init_data.h"

namespace confpod::spec {

PodPaths pod_paths(const std::string& runtime_dir, const std::string& pod_name) {
  PodPaths p;
  std::string root = runtime_dir;
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  p.dir = root + "/pods/" + pod_name;
  p.qmp_socket = p.dir + "/qmp.sock";
  p.pidfile = p.dir + "/qemu.pid";
  p.vm_dir = p.dir + "/vm";
  p.agent_socket = p.vm_dir + "/agent.sock";
  p.serial_log = p.vm_dir + "/serial.log";
  return p;
}

Result<vmm::VmConfig> vm_config_from_spec(const PodSpec& spec, const HostDefaults& host,
                                          std::string_view init_data) {
  if (host.runtime_dir.empty() || host.runtime_dir.front() != '/')
    return make_error("spec.host", "runtime_dir must be an absolute path");
  vmm::VmConfig c;
  c.name = spec.name;
  c.vcpus = spec.vm.vcpus;
  c.memory_mib = spec.vm.memory_mib;
  c.qemu_binary = host.qemu_binary;
  c.accel = host.accel != "auto"          ? host.accel
            : spec.tee == vmm::Tee::kNone ? host.tee_none_accel
                                          : "kvm";
  c.cpu_model = host.cpu_model;
  c.kernel = host.kernel;
  c.initrd = host.initrd;
  c.kernel_cmdline = host.kernel_cmdline;
  c.tee = spec.tee;
  c.allow_insecure_tee = host.allow_insecure_tee;

  switch (spec.tee) {
    case vmm::Tee::kNone:
      if (!host.allow_insecure_tee)
        return make_error("spec.tee", "pod " + spec.name +
                                          " asks for tee none, which this host does not allow "
                                          "(allow_insecure_tee in confpod.toml)");
      c.firmware = host.firmware_none;
      c.kernel_cmdline += (c.kernel_cmdline.empty() ? "" : " ") +
                          std::string("confpod.init_data_digest=") +
                          to_hex(crypto::sha256(as_bytes(init_data)));
      break;
    case vmm::Tee::kSnp: {
      if (host.firmware_snp.empty())
        return make_error("spec.tee", "this host has no SNP firmware configured");
      c.firmware = host.firmware_snp;
      c.snp.policy = host.snp_policy;
      c.snp.cbitpos = host.cbitpos;
      c.snp.reduced_phys_bits = host.reduced_phys_bits;
      c.snp.kernel_hashes = true;
      Bytes digest = crypto::sha256(as_bytes(init_data));
      std::copy_n(digest.begin(), c.snp.host_data.size(), c.snp.host_data.begin());
      break;
    }
    case vmm::Tee::kTdx: {
      if (host.firmware_tdx.empty())
        return make_error("spec.tee", "this host has no TDX firmware configured");
      c.firmware = host.firmware_tdx;
      c.tdx.attributes = host.tdx_attributes;
      c.tdx.quote_generation_socket = host.tdx_qgs_socket;
      Bytes digest = crypto::sha384(as_bytes(init_data));
      std::copy_n(digest.begin(), c.tdx.mrconfigid.size(), c.tdx.mrconfigid.begin());
      break;
    }
  }

  const PodPaths paths = pod_paths(host.runtime_dir, spec.name);
  c.qmp_socket = paths.qmp_socket;
  c.pidfile = paths.pidfile;
  c.serial_log = paths.serial_log;
  // The agent's channel: one or the other, so the agent never has two hosts to choose from.
  if (host.vsock_cid != 0)
    c.vsock_cid = host.vsock_cid;
  else
    c.channels.push_back({std::string(kAgentChannelName), paths.agent_socket});

  // Image archives are handed to the guest as read-only disks; the agent finds each by its
  // serial and checks the digest bound in init-data before using it.
  for (std::size_t i = 0; i < spec.containers.size(); ++i) {
    vmm::Disk disk;
    disk.path = spec.containers[i].image.path;
    disk.read_only = true;
    disk.format = "raw";
    disk.serial = image_disk_serial(i);
    c.disks.push_back(std::move(disk));
  }

  switch (host.network.kind) {
    case PodNetwork::Kind::kUser: {
      vmm::Nic nic;
      nic.kind = vmm::Nic::Kind::kUser;
      for (const Port& p : spec.ports)
        nic.forwards.push_back({p.protocol, p.host_ip, p.host_port, p.guest_port});
      c.nics.push_back(std::move(nic));
      break;
    }
    case PodNetwork::Kind::kTap: {
      vmm::Nic nic;
      nic.kind = vmm::Nic::Kind::kTap;
      nic.tap_name = host.network.tap;
      nic.mac = host.network.mac;
      nic.vhost = host.network.vhost;
      c.nics.push_back(std::move(nic));
      break;
    }
    case PodNetwork::Kind::kNone:
      break;
  }
  return c;
}

Result<vmm::VmConfig> vm_config_from_spec(const PodSpec& spec, const HostDefaults& host) {
  // The agent refuses init-data it cannot accept; refuse such a pod here, at create.
  guest::InitData init_data = init_data_from_spec(spec, host);
  if (Status valid = guest::validate_init_data(init_data); !valid.ok())
    return make_error("spec.invalid", "the pod's init-data would be refused by the guest: " +
                                          valid.error().message);
  return vm_config_from_spec(spec, host, guest::to_json(init_data));
}

}  // namespace confpod::spec
