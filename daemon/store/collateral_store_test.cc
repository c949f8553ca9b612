// The collateral table in a real SQLite file: import, list, find, remove, restart.
#include "daemon/store/collateral_store.h"

#include <gtest/gtest.h>

#include "tests/support/fixtures.h"
#include "tests/support/process.h"

namespace confpod::store {
namespace {

std::vector<collateral::Item> items_of(const std::string& fixture) {
  auto items = collateral::parse_file(testing::read_fixture(fixture), fixture);
  EXPECT_TRUE(items.ok()) << items.error().describe();
  return items.ok() ? std::move(items).value() : std::vector<collateral::Item>{};
}

TEST(CollateralStore, ImportListFindRemoveAndRestart) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/confpod.db";
  auto store = SqliteCollateralStore::open(path);
  ASSERT_TRUE(store.ok()) << store.error().describe();
  const std::uint64_t g0 = (*store)->generation();

  auto vcek = items_of("snp/ms_genoa_vcek.pem");
  auto tdx = items_of("tdx/dcapqvl_collateral_v4.json");
  auto added = (*store)->add(vcek, "genoa_vcek.pem", 1000);
  ASSERT_TRUE(added.ok()) << added.error().describe();
  EXPECT_EQ(*added, std::vector<bool>{true});
  EXPECT_GT((*store)->generation(), g0);
  ASSERT_TRUE((*store)->add(tdx, "collateral.json", 2000).ok());
  // The same bytes again: kept once, nothing changes.
  const std::uint64_t g1 = (*store)->generation();
  EXPECT_EQ(*(*store)->add(vcek, "again.pem", 3000), std::vector<bool>{false});
  EXPECT_EQ((*store)->generation(), g1);

  auto listed = (*store)->list();
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->size(), 1 + tdx.size());
  auto found = (*store)->find(collateral::Kind::kSnpVcek, vcek[0].key);
  ASSERT_TRUE(found.ok());
  ASSERT_EQ(found->size(), 1u);
  EXPECT_EQ((*found)[0], vcek[0]);  // byte for byte, with its key, subject and expiry
  EXPECT_TRUE((*store)->find(collateral::Kind::kSnpVcek, "genoa/00/00")->empty());
  EXPECT_EQ((*store)->find(collateral::Kind::kIntelCa)->size(), 3u);

  // Another daemon (a restart) sees the same.
  store->reset();
  auto again = SqliteCollateralStore::open(path);
  ASSERT_TRUE(again.ok());
  auto entries = (*again)->list();
  ASSERT_TRUE(entries.ok());
  const CollateralEntry* genoa = nullptr;
  for (const auto& e : *entries)
    if (e.item.kind == collateral::Kind::kSnpVcek) genoa = &e;
  ASSERT_NE(genoa, nullptr);
  EXPECT_EQ(genoa->source, "genoa_vcek.pem");
  EXPECT_EQ(genoa->imported_at, 1000);

  // rm by a prefix of the id; unknown, malformed and ambiguous ids are named errors.
  auto removed = (*again)->remove(vcek[0].id().substr(0, 6));
  ASSERT_TRUE(removed.ok()) << removed.error().describe();
  EXPECT_EQ(removed->item.kind, collateral::Kind::kSnpVcek);
  EXPECT_EQ((*again)->remove(vcek[0].id()).error().code, "collateral.not_found");
  EXPECT_NE((*again)->remove("xyz!").error().message.find("is not a collateral id"),
            std::string::npos);
  EXPECT_EQ((*again)->list()->size(), tdx.size());
}

}  // namespace
}  // namespace confpod::store
