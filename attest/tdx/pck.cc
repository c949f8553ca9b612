#include "attest/tdx/pck.h"

#include <openssl/asn1.h>
#include <openssl/objects.h>

#include <algorithm>
#include <memory>
#include <string>

#include "attest/crypto/crypto.h"

namespace confpod::tdx {

namespace {

constexpr const char* kCode = "tdx.pck.extension";

struct Asn1ObjectFree {
  void operator()(ASN1_OBJECT* p) const { ASN1_OBJECT_free(p); }
};
struct Asn1IntegerFree {
  void operator()(ASN1_INTEGER* p) const { ASN1_INTEGER_free(p); }
};

// One DER element inside [p, end): its tag, the content bytes and the whole encoding.
struct Element {
  int tag = 0;
  int cls = 0;
  bool constructed = false;
  ByteView content;
  ByteView encoding;
};

// Reads the next element and advances `rest` past it. Definite lengths only (DER).
Result<Element> next_element(ByteView& rest) {
  const unsigned char* p = rest.data();
  long length = 0;
  int tag = 0;
  int cls = 0;
  const int flags = ASN1_get_object(&p, &length, &tag, &cls, static_cast<long>(rest.size()));
  if ((flags & 0x80) != 0 || flags == 0x21)  // error, or indefinite length
    return make_error(kCode, "malformed DER in the SGX extension");
  const auto header = static_cast<std::size_t>(p - rest.data());
  if (length < 0 || static_cast<std::size_t>(length) > rest.size() - header)
    return make_error(kCode, "DER element overruns the SGX extension");
  Element e;
  e.tag = tag;
  e.cls = cls;
  e.constructed = (flags & V_ASN1_CONSTRUCTED) != 0;
  e.content = rest.subspan(header, static_cast<std::size_t>(length));
  e.encoding = rest.first(header + static_cast<std::size_t>(length));
  rest = rest.subspan(e.encoding.size());
  return e;
}

Result<Element> expect(ByteView& rest, int tag, bool constructed, const std::string& what) {
  CONFPOD_ASSIGN_OR_RETURN(Element e, next_element(rest));
  if (e.cls != V_ASN1_UNIVERSAL || e.tag != tag || e.constructed != constructed)
    return make_error(kCode, what + ": unexpected DER tag " + std::to_string(e.tag));
  return e;
}

Result<std::string> oid_text(const Element& e) {
  const unsigned char* p = e.encoding.data();
  std::unique_ptr<ASN1_OBJECT, Asn1ObjectFree> obj(
      d2i_ASN1_OBJECT(nullptr, &p, static_cast<long>(e.encoding.size())));
  if (!obj) return make_error(kCode, "malformed OID in the SGX extension");
  char buf[128];
  const int n = OBJ_obj2txt(buf, sizeof buf, obj.get(), 1);
  if (n <= 0 || static_cast<std::size_t>(n) >= sizeof buf)
    return make_error(kCode, "unprintable OID in the SGX extension");
  return std::string(buf, static_cast<std::size_t>(n));
}

struct Asn1EnumeratedFree {
  void operator()(ASN1_ENUMERATED* p) const { ASN1_ENUMERATED_free(p); }
};

Result<std::int64_t> integer_value(const Element& e, const std::string& what) {
  const unsigned char* p = e.encoding.data();
  const auto size = static_cast<long>(e.encoding.size());
  std::int64_t out = 0;
  bool ok = false;
  if (e.tag == V_ASN1_INTEGER) {
    std::unique_ptr<ASN1_INTEGER, Asn1IntegerFree> value(d2i_ASN1_INTEGER(nullptr, &p, size));
    ok = value && ASN1_INTEGER_get_int64(&out, value.get()) == 1;
  } else if (e.tag == V_ASN1_ENUMERATED) {
    std::unique_ptr<ASN1_ENUMERATED, Asn1EnumeratedFree> value(
        d2i_ASN1_ENUMERATED(nullptr, &p, size));
    ok = value && ASN1_ENUMERATED_get_int64(&out, value.get()) == 1;
  }
  if (!ok) return make_error(kCode, what + ": not an integer");
  return out;
}

template <std::size_t N>
Status octets(const Element& e, std::array<std::uint8_t, N>& out, const std::string& what) {
  if (e.tag != V_ASN1_OCTET_STRING || e.content.size() != N)
    return make_error(kCode,
                      what + ": expected an OCTET STRING of " + std::to_string(N) + " bytes");
  std::copy(e.content.begin(), e.content.end(), out.begin());
  return ok_status();
}

// The TCB sequence (...13.1.2): SEQUENCE OF SEQUENCE { OID, INTEGER | OCTET STRING }.
Status parse_tcb(ByteView tcb, PckExtensions& out, unsigned& seen) {
  const std::string prefix = std::string(kSgxExtensionsOid) + ".2.";
  while (!tcb.empty()) {
    CONFPOD_ASSIGN_OR_RETURN(Element entry, expect(tcb, V_ASN1_SEQUENCE, true, "TCB entry"));
    ByteView fields = entry.content;
    CONFPOD_ASSIGN_OR_RETURN(Element oid_el, expect(fields, V_ASN1_OBJECT, false, "TCB OID"));
    CONFPOD_ASSIGN_OR_RETURN(std::string oid, oid_text(oid_el));
    CONFPOD_ASSIGN_OR_RETURN(Element value, next_element(fields));
    if (oid.rfind(prefix, 0) != 0) continue;
    const std::string suffix = oid.substr(prefix.size());
    if (suffix.empty() || suffix.size() > 2 ||
        !std::all_of(suffix.begin(), suffix.end(), [](char c) { return c >= '0' && c <= '9'; }))
      continue;
    const int index = std::stoi(suffix);
    if (index >= 1 && index <= 17) {
      CONFPOD_ASSIGN_OR_RETURN(std::int64_t svn, integer_value(value, "TCB component " + suffix));
      const std::int64_t max = index == 17 ? 0xFFFF : 0xFF;
      if (svn < 0 || svn > max)
        return make_error(kCode, "TCB component " + suffix + " out of range");
      if (index == 17)
        out.pce_svn = static_cast<std::uint16_t>(svn);
      else
        out.tcb_components[static_cast<std::size_t>(index - 1)] = static_cast<std::uint8_t>(svn);
      seen |= 1u << index;
    } else if (index == 18) {
      CONFPOD_TRY(octets(value, out.cpu_svn, "CPUSVN"));
      seen |= 1u << 18;
    }
  }
  return ok_status();
}

}  // namespace

Result<PckExtensions> parse_pck_extensions(X509* cert) {
  auto der = crypto::extension_value(cert, kSgxExtensionsOid);
  if (!der.ok())
    return make_error(
        kCode, "PCK certificate has no SGX extension (" + std::string(kSgxExtensionsOid) + ")");
  ByteView outer(*der);
  CONFPOD_ASSIGN_OR_RETURN(Element top, expect(outer, V_ASN1_SEQUENCE, true, "SGX extension"));
  if (!outer.empty()) return make_error(kCode, "bytes after the SGX extension sequence");

  PckExtensions out;
  unsigned tcb_seen = 0;
  bool ppid = false, tcb = false, pce_id = false, fmspc = false;
  const std::string prefix = std::string(kSgxExtensionsOid) + ".";
  ByteView entries = top.content;
  while (!entries.empty()) {
    CONFPOD_ASSIGN_OR_RETURN(Element entry, expect(entries, V_ASN1_SEQUENCE, true, "entry"));
    ByteView fields = entry.content;
    CONFPOD_ASSIGN_OR_RETURN(Element oid_el, expect(fields, V_ASN1_OBJECT, false, "entry OID"));
    CONFPOD_ASSIGN_OR_RETURN(std::string oid, oid_text(oid_el));
    CONFPOD_ASSIGN_OR_RETURN(Element value, next_element(fields));
    if (oid.rfind(prefix, 0) != 0) continue;
    const std::string suffix = oid.substr(prefix.size());
    if (suffix == "1") {
      CONFPOD_TRY(octets(value, out.ppid, "PPID"));
      ppid = true;
    } else if (suffix == "2") {
      if (value.tag != V_ASN1_SEQUENCE || !value.constructed)
        return make_error(kCode, "TCB: expected a SEQUENCE");
      CONFPOD_TRY(parse_tcb(value.content, out, tcb_seen));
      tcb = true;
    } else if (suffix == "3") {
      CONFPOD_TRY(octets(value, out.pce_id, "PCE-ID"));
      pce_id = true;
    } else if (suffix == "4") {
      CONFPOD_TRY(octets(value, out.fmspc, "FMSPC"));
      fmspc = true;
    } else if (suffix == "5") {
      CONFPOD_ASSIGN_OR_RETURN(std::int64_t type, integer_value(value, "SGX type"));
      out.sgx_type = static_cast<int>(type);
    }
  }
  constexpr unsigned kAllTcb = ((1u << 19) - 1) & ~1u;  // bits 1..18
  if (!ppid || !tcb || !pce_id || !fmspc)
    return make_error(kCode, "SGX extension lacks PPID, TCB, PCE-ID or FMSPC");
  if (tcb_seen != kAllTcb)
    return make_error(kCode, "SGX extension TCB lacks a component SVN, PCESVN or CPUSVN");
  return out;
}

}  // namespace confpod::tdx
