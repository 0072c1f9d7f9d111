package store

import (
	"strings"
	"testing"
)

func TestFoundRSKBlocks(t *testing.T) {
	engines(t, func(t *testing.T, s *Store, clk *clock, cfg Config) {
		ctx := testCtx(t)
		b := FoundRSKBlock{BitcoinBlockHash: strings.ToUpper(hashOf(1)), RSKBlockHash: "0x" + hashOf(2), Height: 812345,
			JobID: 1 << 63, PUID: 7, WorkerID: -5, WorkerFullName: "alice." + strings.Repeat("r", 60), FeesForMiner: "1234",
			SubmitResponse: `{"result":{"blockImportedResult":"IMPORTED_BEST"}}`}
		for i := 0; i < 2; i++ { // handling a share twice keeps one row
			if err := s.InsertFoundRSKBlock(ctx, b); err != nil {
				t.Fatal(err)
			}
		}
		list, err := s.FoundRSKBlocks(ctx, 0)
		if err != nil || len(list) != 1 {
			t.Fatalf("%d rows, %v", len(list), err)
		}
		want := b
		want.ID, want.BitcoinBlockHash, want.RSKBlockHash, want.WorkerFullName, want.CreatedAt =
			list[0].ID, hashOf(1), hashOf(2), b.WorkerFullName[:50], t0
		if list[0] != want {
			t.Fatalf("got %+v\nwant %+v", list[0], want)
		}
		// Another parent header for the same RSK work is another submission: a second row.
		b.BitcoinBlockHash = hashOf(3)
		if err := s.InsertFoundRSKBlock(ctx, b); err != nil {
			t.Fatal(err)
		}
		if n := count(t, s, "found_rsk_blocks"); n != 2 {
			t.Fatalf("%d rows", n)
		}
		b.RSKBlockHash = "0x12"
		if err := s.InsertFoundRSKBlock(ctx, b); err == nil {
			t.Fatal("bad RSK hash accepted")
		}
	})
}

// TestMigrationAddsRSKTable: a database migrated by a build without RSK (schema version 1)
// gets found_rsk_blocks at the next start.
func TestMigrationAddsRSKTable(t *testing.T) {
	engines(t, func(t *testing.T, s *Store, clk *clock, cfg Config) {
		ctx := testCtx(t)
		for _, q := range []string{"DROP TABLE found_rsk_blocks", "DELETE FROM " + migrationsTable + " WHERE version = 2"} {
			if _, err := s.DB().ExecContext(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		s2 := openTest(t, cfg)
		if n := count(t, s2, "found_rsk_blocks"); n != 0 {
			t.Fatalf("%d rows", n)
		}
		if n := count(t, s2, migrationsTable); n != SchemaVersion() || SchemaVersion() != 2 {
			t.Fatalf("%d migration rows, schema %d", n, SchemaVersion())
		}
	})
}
