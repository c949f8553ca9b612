// Persistent pod state: one SQLite database (WAL) under the daemon's state_dir.
//
// Every mutation is one transaction, so a crash (kill -9, power loss) leaves either the old
// or the new row, never half of one. The schema is versioned (PRAGMA user_version) and
// migrated forward on open; a database newer than this build is refused, not guessed at.
//
// The store is used from the daemon's event-loop thread; one Store object owns one
// connection. Each commit is on disk when it returns, unless use_group_commit() hands the
// flushes to a GroupCommit (the daemon does: group_commit.h). Errors: store.open, store.schema (too
// new / corrupt), store.io (SQLite failure, message has sqlite3_errmsg), store.exists, store.taken,
// store.not_found.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "attest/base/result.h"

namespace confpod::store {

class GroupCommit;

// The lifecycle states of the D-Bus API (docs/dbus-api.md), spelled as there.
enum class PodState { kCreated, kStarting, kRunning, kStopping, kExited, kFailed };
std::string_view to_string(PodState state);  // "created", "starting", ...
std::optional<PodState> pod_state_from_string(std::string_view text);

struct PodRecord {
  std::string name;
  std::string tee;        // "none" | "snp" | "tdx"
  std::string spec_toml;  // the canonical TOML (spec::to_toml), exactly as created
  PodState state = PodState::kCreated;
  std::int64_t created_at_us = 0;             // CLOCK_REALTIME, microseconds
  std::optional<std::int64_t> started_at_us;  // last start
  std::optional<std::int64_t> exit_status;    // last exit: code, or 128+signal
  // Why the last exit: "" (the status says it all), "oom" (the agent saw a container killed
  // for going over its memory limit), or confpodd's reason for killing the VM.
  std::string exit_reason;
  std::string measurement;  // expected launch measurement, hex; "" for none
  // The pod's place on the network, fixed at CreatePod (docs/network.md): the network name
  // ("user", "none" or a bridge network; "" in rows older than schema 3, meaning "user"),
  // and on a bridge network its IPv4 address, IPv6 address ("" without subnet6) and MAC.
  // No two pods hold the same address (a unique index).
  std::string network;
  std::string address;
  std::string address6;
  std::string mac;
  // The guest CID of a pod whose agent channel is vsock, fixed at CreatePod (0: the channel
  // is virtio-serial). No two pods hold the same CID (a unique index).
  std::uint32_t vsock_cid = 0;
  bool operator==(const PodRecord&) const = default;
};

// A network created over D-Bus (those of confpod.toml are not stored).
struct NetworkRecord {
  std::string name;
  std::string bridge;
  std::string subnet;
  std::string subnet6;
  bool masquerade = true;
  std::string dns;  // comma-separated addresses
  bool operator==(const NetworkRecord&) const = default;
};

// 1: pods. 2: resources (the KBS secrets, daemon/store/resource_store.h). 3: pod network
// columns and networks. 4: attestation collateral (daemon/store/collateral_store.h).
// 5: pods.exit_reason. 6: pods.vsock_cid.
inline constexpr int kSchemaVersion = 6;

class Store {
 public:
  // Opens (creating if missing, mode 0600; an existing file and its -wal/-shm are narrowed to
  // 0600) the database file, sets WAL + synchronous=FULL + a busy
  // timeout, and migrates the schema to kSchemaVersion.
  static Result<Store> open(const std::string& path);

  Store(Store&&) noexcept;
  Store& operator=(Store&&) noexcept;
  ~Store();

  // store.exists when a pod of that name is already there; store.taken when its address or
  // vsock CID is another pod's.
  Status insert_pod(const PodRecord& pod);
  Result<std::optional<PodRecord>> get_pod(std::string_view name);
  // Ordered by name.
  Result<std::vector<PodRecord>> list_pods();
  // Replaces every field but name and created_at_us (store.not_found if absent).
  Status update_pod(const PodRecord& pod);
  // store.not_found if absent.
  Status remove_pod(std::string_view name);

  // store.exists when the name or bridge is taken.
  Status insert_network(const NetworkRecord& network);
  // store.not_found if absent.
  Status remove_network(std::string_view name);
  // Ordered by name.
  Result<std::vector<NetworkRecord>> list_networks();

  int schema_version() const;

  // From now on commits do not wait for the disk: `group_commit` flushes them and tells who
  // must wait (group_commit.h). It must outlive this Store.
  Status use_group_commit(GroupCommit& group_commit);

 private:
  struct Impl;
  explicit Store(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

namespace detail {
// The SQL of the migration to schema `version` (1..kSchemaVersion), as Store::open runs it:
// tests build a database exactly as an older build left it from this, not from a copy.
std::string_view migration_sql(int version);
// PRAGMA application_id of confpod's database.
std::int64_t application_id();
}  // namespace detail

}  // namespace confpod::store
