#include "daemon/spec/init_data.h"

namespace confpod::spec {

std::string image_disk_serial(std::size_t index) { return "image" + std::to_string(index); }

guest::InitData init_data_from_spec(const PodSpec& spec, const HostDefaults& host) {
  guest::InitData d;
  d.pod = spec.name;
  d.tee = vmm::to_string(spec.tee);
  if (!spec.secrets.empty()) d.kbs_url = host.kbs_guest_url;
  d.network.interface = "eth0";
  if (host.network.kind != PodNetwork::Kind::kNone) {
    d.network.mac = host.network.mac;
    d.network.address = host.network.address;
    d.network.gateway = host.network.gateway;
    d.network.address6 = host.network.address6;
    d.network.gateway6 = host.network.gateway6;
    d.network.dns = host.network.dns;
  }
  for (std::size_t i = 0; i < spec.containers.size(); ++i) {
    const Container& c = spec.containers[i];
    guest::InitContainer ic;
    ic.name = c.name;
    ic.image.digest = c.image.digest;
    ic.image.disk = image_disk_serial(i);
    ic.command = c.command;
    ic.env = c.env;
    ic.workdir = c.workdir;
    ic.init = c.init;
    ic.user = c.user;
    ic.read_only_rootfs = c.read_only_rootfs;
    ic.tmpfs = c.tmpfs;
    ic.capabilities = container_capabilities(c);
    ic.seccomp = c.seccomp;
    ic.cpu_millis = c.cpu_millis;
    ic.memory_mib = c.memory_mib;
    d.containers.push_back(std::move(ic));
  }
  for (const Secret& s : spec.secrets) d.secrets.push_back({s.resource, s.path, s.env});
  d.allow_exec = spec.allow_exec;
  return d;
}

std::string init_data_text(const PodSpec& spec, const HostDefaults& host) {
  return guest::to_json(init_data_from_spec(spec, host));
}

}  // namespace confpod::spec
