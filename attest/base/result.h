// Result<T>: the one error style used across confpod.
//
// A function that can fail returns Result<T> (or Status for no value). An Error
// carries a stable machine-readable code ("snp.signature", "tdx.collateral.expired")
// that tests, the CLI and later D-Bus error names key on, and a human message that
// names what was wrong. Exceptions are not used for expected failures; they only
// escape from third-party code and are caught at component edges.
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace confpod {

struct Error {
  std::string code;     // stable, dotted, lower-case: "<component>.<check>"
  std::string message;  // for people: names the field / check and the values

  // "code: message", the form printed by the CLI.
  std::string describe() const { return code + ": " + message; }
};

inline Error make_error(std::string code, std::string message) {
  return Error{std::move(code), std::move(message)};
}

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & {
    assert(ok());
    return std::get<0>(v_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<0>(v_);
  }
  T&& value() && {
    assert(ok());
    return std::get<0>(std::move(v_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const {
    assert(!ok());
    return std::get<1>(v_);
  }
  Error&& take_error() {
    assert(!ok());
    return std::get<1>(std::move(v_));
  }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const {
    assert(!ok_);
    return error_;
  }
  Error&& take_error() {
    assert(!ok_);
    return std::move(error_);
  }

 private:
  Error error_;
  bool ok_ = true;
};

using Status = Result<void>;

inline Status ok_status() { return Status(); }

}  // namespace confpod

// Propagate an error from an expression returning Result<...>/Status.
#define CONFPOD_CONCAT_INNER(a, b) a##b
#define CONFPOD_CONCAT(a, b) CONFPOD_CONCAT_INNER(a, b)

#define CONFPOD_TRY(expr)                                                   \
  do {                                                                      \
    auto confpod_try_status_ = (expr);                                      \
    if (!confpod_try_status_.ok()) return confpod_try_status_.take_error(); \
  } while (0)

// CONFPOD_ASSIGN_OR_RETURN(auto x, f()); binds the value or returns the error.
#define CONFPOD_ASSIGN_OR_RETURN(decl, expr) \
  CONFPOD_ASSIGN_OR_RETURN_IMPL(CONFPOD_CONCAT(confpod_result_, __LINE__), decl, expr)
#define CONFPOD_ASSIGN_OR_RETURN_IMPL(tmp, decl, expr) \
  auto tmp = (expr);                                   \
  if (!tmp.ok()) return tmp.take_error();              \
  decl = std::move(tmp).value()
