#include "daemon/bus/broker.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <string_view>

#include "attest/base/bytes.h"
#include "attest/base/crash_point.h"
#include "attest/base/time.h"
#include "attest/collateral/collateral.h"
#include "daemon/bus/errors.h"
#include "daemon/bus/service.h"

namespace confpod::bus {
namespace {

// Overwrites a copy of a secret before its memory goes back to the allocator.
struct Wiped {
  Bytes bytes;
  Wiped() = default;
  Wiped(const Wiped&) = delete;
  Wiped& operator=(const Wiped&) = delete;
  ~Wiped() { OPENSSL_cleanse(bytes.data(), bytes.size()); }
};

Error invalid(std::string message) {
  return make_error("kbs.reference_values", std::move(message));
}

Result<Bytes> hex_value(std::string_view key, const char* text) {
  auto bytes = from_hex(text);
  if (!bytes.ok()) return invalid(std::string(key) + ": " + bytes.error().message);
  return std::move(bytes).value();
}

Result<std::vector<std::string>> read_strv(sd_bus_message* m, std::string_view key) {
  char** raw = nullptr;
  int r = sd_bus_message_read_strv(m, &raw);
  std::vector<std::string> out;
  if (raw != nullptr) {
    for (char** p = raw; *p != nullptr; ++p) {
      out.emplace_back(*p);
      std::free(*p);
    }
    std::free(raw);
  }
  if (r < 0) return invalid(std::string(key) + ": " + std::strerror(-r));
  return out;
}

// Reads the a{sv} of SetReferenceValues (docs/dbus-api.md): unknown keys and wrong types are
// errors, so a typo is not silently a weaker policy.
Result<kbs::ReferenceValues> read_reference_values(sd_bus_message* m, std::string pod) {
  kbs::ReferenceValues v;
  v.pod = std::move(pod);
  int r = sd_bus_message_enter_container(m, SD_BUS_TYPE_ARRAY, "{sv}");
  if (r < 0) return invalid(std::string("values: ") + std::strerror(-r));
  int digests = 0;
  while ((r = sd_bus_message_enter_container(m, SD_BUS_TYPE_DICT_ENTRY, "sv")) > 0) {
    const char* key_raw = nullptr;
    r = sd_bus_message_read(m, "s", &key_raw);
    if (r < 0) return invalid(std::string("key: ") + std::strerror(-r));
    const std::string key = key_raw;
    const char* contents = nullptr;
    r = sd_bus_message_peek_type(m, nullptr, &contents);
    if (r < 0) return invalid(key + ": " + std::strerror(-r));
    const std::string type = contents != nullptr ? contents : "";
    const bool string_key = key == "tee" || key == "measurement" || key == "host_data" ||
                            key == "mrconfigid" || key == "init_data_digest";
    const bool strv_key = key == "measurements" || key == "resources";
    if (!string_key && !strv_key) return invalid("unknown key \"" + key + "\"");
    if (type != (string_key ? "s" : "as"))
      return invalid(key + " must be a variant of type " + (string_key ? "s" : "as") + ", got " +
                     type);
    r = sd_bus_message_enter_container(m, SD_BUS_TYPE_VARIANT, type.c_str());
    if (r < 0) return invalid(key + ": " + std::strerror(-r));
    if (string_key) {
      const char* text = nullptr;
      r = sd_bus_message_read(m, "s", &text);
      if (r < 0) return invalid(key + ": " + std::strerror(-r));
      if (key == "tee") {
        v.tee = text;
      } else if (key == "measurement") {
        CONFPOD_ASSIGN_OR_RETURN(Bytes b, hex_value(key, text));
        v.measurements.push_back(std::move(b));
      } else {
        CONFPOD_ASSIGN_OR_RETURN(v.init_data_digest, hex_value(key, text));
        ++digests;
      }
    } else {
      CONFPOD_ASSIGN_OR_RETURN(std::vector<std::string> list, read_strv(m, key));
      if (key == "resources") {
        v.resources = std::move(list);
      } else {
        for (const std::string& hex : list) {
          CONFPOD_ASSIGN_OR_RETURN(Bytes b, hex_value(key, hex.c_str()));
          v.measurements.push_back(std::move(b));
        }
      }
    }
    r = sd_bus_message_exit_container(m);              // variant
    if (r >= 0) r = sd_bus_message_exit_container(m);  // dict entry
    if (r < 0) return invalid(key + ": " + std::strerror(-r));
  }
  if (r < 0) return invalid(std::string("values: ") + std::strerror(-r));
  r = sd_bus_message_exit_container(m);
  if (r < 0) return invalid(std::string("values: ") + std::strerror(-r));
  if (digests > 1)
    return invalid("give one of host_data, mrconfigid and init_data_digest, not several");
  if (v.tee == "snp" && digests == 1 && v.init_data_digest.size() != 32)
    return invalid("host_data must be 32 bytes (SHA-256 of the init-data)");
  return v;
}

// The "say" arguments of SetResource and ImportCollateral; the pointers live as long as `m`.
int read_string_and_bytes(sd_bus_message* m, const char** text, const void** data,
                          std::size_t* size) {
  int r = sd_bus_message_read(m, "s", text);
  if (r >= 0) r = sd_bus_message_read_array(m, 'y', data, size);
  return r;
}

// Replies to `call` with an array of `element`s, `append` writing one per item of `list`.
template <typename List, typename Append>
int reply_array(sd_bus_message* call, const char* element, const List& list, Append append) {
  sd_bus_message* raw = nullptr;
  int r = sd_bus_message_new_method_return(call, &raw);
  if (r < 0) return r;
  std::unique_ptr<sd_bus_message, sd_bus_message* (*)(sd_bus_message*)> reply(
      raw, &sd_bus_message_unref);
  r = sd_bus_message_open_container(raw, 'a', element);
  for (const auto& item : list) {
    if (r < 0) break;
    r = append(raw, item);
  }
  if (r >= 0) r = sd_bus_message_close_container(raw);
  if (r < 0) return r;
  return sd_bus_send(nullptr, raw, nullptr);
}

}  // namespace

struct Broker::Handlers {
  static Broker* self(void* userdata) { return static_cast<Broker*>(userdata); }

  static int set_resource(sd_bus_message* m, void* userdata, sd_bus_error* error) {
    const char* path_raw = nullptr;
    const void* data = nullptr;
    std::size_t size = 0;
    if (int r = read_string_and_bytes(m, &path_raw, &data, &size); r < 0) return r;
    Broker* b = self(userdata);
    std::string path = path_raw;
    // Copied (and wiped when done): polkit may answer after this message is gone.
    auto value = std::make_shared<Wiped>();
    const auto* bytes = static_cast<const std::uint8_t*>(data);
    if (size > 0) value->bytes.assign(bytes, bytes + size);
    return b->auth_.authorize(m, error, [b, path, value](sd_bus_message* call, sd_bus_error* err) {
      Status s = b->store_.put(path, value->bytes);
      if (!s.ok()) return set_bus_error(err, s.error());
      crash_point("secret.stored");
      return sd_bus_reply_method_return(call, nullptr);
    });
  }

  static int delete_resource(sd_bus_message* m, void* userdata, sd_bus_error* error) {
    const char* path_raw = nullptr;
    int r = sd_bus_message_read(m, "s", &path_raw);
    if (r < 0) return r;
    Broker* b = self(userdata);
    std::string path = path_raw;
    return b->auth_.authorize(m, error, [b, path](sd_bus_message* call, sd_bus_error* err) {
      Status valid = kbs::check_resource_path(path);
      if (!valid.ok()) return set_bus_error(err, valid.error());
      auto existing = b->store_.get(path);
      if (!existing.ok()) return set_bus_error(err, existing.error());
      if (!existing->has_value())
        return set_bus_error(err,
                             make_error("kbs.resource.not_found", "no resource \"" + path + "\""));
      OPENSSL_cleanse((*existing)->data(), (*existing)->size());
      Status s = b->store_.remove(path);
      if (!s.ok()) return set_bus_error(err, s.error());
      return sd_bus_reply_method_return(call, nullptr);
    });
  }

  static int list_resources(sd_bus_message* m, void* userdata, sd_bus_error* error) {
    Broker* b = self(userdata);
    return b->auth_.authorize(m, error, [b](sd_bus_message* call, sd_bus_error* err) {
      auto list = b->store_.list();
      if (!list.ok()) return set_bus_error(err, list.error());
      return reply_array(call, "s", *list, [](sd_bus_message* reply, const std::string& path) {
        return sd_bus_message_append(reply, "s", path.c_str());
      });
    });
  }

  static int set_reference_values(sd_bus_message* m, void* userdata, sd_bus_error* error) {
    const char* pod_raw = nullptr;
    int r = sd_bus_message_read(m, "s", &pod_raw);
    if (r < 0) return r;
    // Parsed before authorizing: the message is only readable now.
    auto values = read_reference_values(m, pod_raw);
    Broker* b = self(userdata);
    auto parsed = std::make_shared<Result<kbs::ReferenceValues>>(std::move(values));
    return b->auth_.authorize(m, error, [b, parsed](sd_bus_message* call, sd_bus_error* err) {
      if (!parsed->ok()) return set_bus_error(err, parsed->error());
      Status s = b->kbs_.set_reference_values(std::move(*parsed).value(), kbs::Kbs::Source::kAdmin);
      if (!s.ok()) return set_bus_error(err, s.error());
      return sd_bus_reply_method_return(call, nullptr);
    });
  }

  static int import_collateral(sd_bus_message* m, void* userdata, sd_bus_error* error) {
    const char* name_raw = nullptr;
    const void* data = nullptr;
    std::size_t size = 0;
    if (int r = read_string_and_bytes(m, &name_raw, &data, &size); r < 0) return r;
    Broker* b = self(userdata);
    // Parsed before authorizing (the message is only readable now); nothing is stored before.
    const std::string name = std::string(name_raw).substr(0, 200);
    auto parsed = std::make_shared<Result<std::vector<collateral::Item>>>(
        collateral::parse_file(ByteView(static_cast<const std::uint8_t*>(data), size), name));
    return b->auth_.authorize(m, error, [b, parsed, name](sd_bus_message* call, sd_bus_error* err) {
      if (!parsed->ok()) return set_bus_error(err, parsed->error());
      auto imported = import_items(b->collateral_, **parsed, name);
      if (!imported.ok()) return set_bus_error(err, imported.error());
      if (b->collateral_changed_ &&
          std::find(imported->begin(), imported->end(), true) != imported->end())
        b->collateral_changed_();
      std::vector<std::pair<const collateral::Item*, bool>> rows;
      for (std::size_t i = 0; i < (*parsed)->size(); ++i)
        rows.emplace_back(&(**parsed)[i], (*imported)[i]);
      return reply_array(call, "(ssssx)", rows, [](sd_bus_message* reply, const auto& row) {
        const collateral::Item& item = *row.first;
        return sd_bus_message_append(reply, "(ssssx)", item.id().c_str(),
                                     std::string(collateral::kind_name(item.kind)).c_str(),
                                     item.subject.c_str(), row.second ? "added" : "present",
                                     static_cast<std::int64_t>(item.not_after));
      });
    });
  }

  // Every item is verified against the pinned roots (issuers from the same file or the store)
  // before any is stored: a file is imported whole or not at all.
  static Result<std::vector<bool>> import_items(store::SqliteCollateralStore& store,
                                                const std::vector<collateral::Item>& items,
                                                const std::string& name) {
    std::vector<collateral::Item> known = items;
    CONFPOD_ASSIGN_OR_RETURN(auto issuers, store.find(collateral::Kind::kIntelCa));
    for (collateral::Item& i : issuers) known.push_back(std::move(i));
    const UnixSeconds now = now_unix();
    for (const collateral::Item& item : items) {
      Status ok = collateral::verify_item(item, known, now);
      if (!ok.ok()) return make_error(ok.error().code, name + ": " + ok.error().message);
    }
    return store.add(items, name, now);
  }

  static int list_collateral(sd_bus_message* m, void* userdata, sd_bus_error* error) {
    Broker* b = self(userdata);
    return b->auth_.authorize(m, error, [b](sd_bus_message* call, sd_bus_error* err) {
      auto list = b->collateral_.list();
      if (!list.ok()) return set_bus_error(err, list.error());
      return reply_array(
          call, "(ssssxsx)", *list, [](sd_bus_message* reply, const store::CollateralEntry& e) {
            return sd_bus_message_append(
                reply, "(ssssxsx)", e.item.id().c_str(),
                std::string(collateral::kind_name(e.item.kind)).c_str(), e.item.key.c_str(),
                e.item.subject.c_str(), static_cast<std::int64_t>(e.item.not_after),
                e.source.c_str(), static_cast<std::int64_t>(e.imported_at));
          });
    });
  }

  static int remove_collateral(sd_bus_message* m, void* userdata, sd_bus_error* error) {
    const char* id_raw = nullptr;
    int r = sd_bus_message_read(m, "s", &id_raw);
    if (r < 0) return r;
    Broker* b = self(userdata);
    std::string id = id_raw;
    return b->auth_.authorize(m, error, [b, id](sd_bus_message* call, sd_bus_error* err) {
      auto removed = b->collateral_.remove(id);
      if (!removed.ok()) return set_bus_error(err, removed.error());
      if (b->collateral_changed_) b->collateral_changed_();
      return sd_bus_reply_method_return(call, "s", removed->item.id().c_str());
    });
  }

  static const sd_bus_vtable vtable[];
};

// UNPRIVILEGED: sd-bus's CAP_SYS_ADMIN check is replaced by the Authorizer (auth.h).
const sd_bus_vtable Broker::Handlers::vtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_METHOD_WITH_NAMES("SetResource", "say", SD_BUS_PARAM(path) SD_BUS_PARAM(value), "", ,
                             set_resource, SD_BUS_VTABLE_UNPRIVILEGED | SD_BUS_VTABLE_SENSITIVE),
    SD_BUS_METHOD_WITH_NAMES("DeleteResource", "s", SD_BUS_PARAM(path), "", , delete_resource,
                             SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("ListResources", "", , "as", SD_BUS_PARAM(paths), list_resources,
                             SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("SetReferenceValues", "sa{sv}", SD_BUS_PARAM(pod) SD_BUS_PARAM(values),
                             "", , set_reference_values, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("ImportCollateral", "say", SD_BUS_PARAM(name) SD_BUS_PARAM(data),
                             "a(ssssx)", SD_BUS_PARAM(items), import_collateral,
                             SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("ListCollateral", "", , "a(ssssxsx)", SD_BUS_PARAM(items),
                             list_collateral, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("RemoveCollateral", "s", SD_BUS_PARAM(id), "s", SD_BUS_PARAM(removed),
                             remove_collateral, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_VTABLE_END,
};

Broker::Broker(kbs::Kbs& kbs, kbs::ResourceStore& store, store::SqliteCollateralStore& collateral,
               AuthPolicy auth)
    : kbs_(kbs), store_(store), collateral_(collateral), auth_(std::move(auth)) {}

Broker::~Broker() = default;

Status add_broker(sd_bus* bus, Broker& broker) {
  sd_bus_slot* slot = nullptr;
  int r = sd_bus_add_object_vtable(bus, &slot, kManagerPath, kBrokerInterface,
                                   Broker::Handlers::vtable, &broker);
  if (r < 0) return make_error("bus.setup", std::string("broker vtable: ") + std::strerror(-r));
  broker.slot_.reset(slot);
  return ok_status();
}

}  // namespace confpod::bus
