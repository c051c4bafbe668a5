/*
 * table_log.c — versioned table metadata from C.
 *
 * A 3-node simulated Raft cluster runs the table log. Two writers race on
 * one table: exactly one commit per base version wins, the loser learns the
 * latest version from LUIGI_ERR_CONFLICT and rebases. A retry after the
 * leader crashed returns the original version instead of committing twice.
 * At the end the live files are read back and checked against what was
 * committed, and an old version is read as of then (a snapshot read).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "luigi.h"

static void check(luigi_status s, const char *what, int line)
{
    if (s != LUIGI_OK) {
        fprintf(stderr, "table_log.c:%d: %s failed: %s: %s\n", line, what, luigi_status_name(s),
                luigi_last_error_message());
        exit(1);
    }
}
#define CHECK(call) check((call), #call, __LINE__)
#define REQUIRE(cond)                                                                  \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "table_log.c:%d: requirement failed: %s\n", __LINE__, #cond); \
            exit(1);                                                                   \
        }                                                                              \
    } while (0)

static uint32_t u32_at(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t u64_at(const uint8_t *p) { return (uint64_t)u32_at(p) | (uint64_t)u32_at(p + 4) << 32; }

/* Prints the files at `version` and returns their total rows. */
static uint64_t print_files(luigi_raft_cluster *c, uint64_t version, size_t *out_count)
{
    luigi_buffer buf = {0};
    CHECK(luigi_meta_files(c, "events", 6, version, 1000, &buf));
    const uint8_t *p = buf.data, *end = buf.data + buf.len;
    uint32_t n = u32_at(p);
    p += 4;
    uint64_t rows = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t path_len = u32_at(p);
        const char *path = (const char *)(p + 4);
        p += 4 + path_len;
        uint64_t file_rows = u64_at(p);
        p += 16; /* rows, size */
        p += 4 + u32_at(p); /* partition */
        for (int s = 0; s < 2; s++) p += 5 + u32_at(p + 1); /* min, max stats */
        printf("    %.*s (%llu rows)\n", (int)path_len, path, (unsigned long long)file_rows);
        rows += file_rows;
    }
    REQUIRE(p == end);
    luigi_buffer_free(&buf);
    *out_count = n;
    return rows;
}

static luigi_meta_file data_file(const char *path, uint64_t rows)
{
    luigi_meta_file f = {.path = path, .path_len = strlen(path), .rows = rows, .size = rows * 64};
    return f;
}

int main(void)
{
    luigi_raft_cluster_options o;
    luigi_raft_cluster_options_init(&o);
    o.seed = 7;
    luigi_raft_cluster *c = NULL;
    CHECK(luigi_meta_cluster_new(&o, &c));
    CHECK(luigi_raft_cluster_tick(c, 50));
    const char schema[] = "id BIGINT, ts TIMESTAMP";
    CHECK(luigi_meta_create_table(c, "events", 6, (const uint8_t *)schema, strlen(schema), 0, 1000));

    /* Two writers race on base version 0: exactly one wins. */
    luigi_meta_file a = data_file("part-a.parquet", 100), b = data_file("part-b.parquet", 200);
    luigi_meta_commit_request race[2] = {
        {.version = LUIGI_META_COMMIT_VERSION, .table = "events", .table_len = 6, .base_version = 0,
         .txn_id = "writer-a-1", .txn_id_len = 10, .adds = &a, .add_count = 1},
        {.version = LUIGI_META_COMMIT_VERSION, .table = "events", .table_len = 6, .base_version = 0,
         .txn_id = "writer-b-1", .txn_id_len = 10, .adds = &b, .add_count = 1},
    };
    luigi_meta_outcome outcomes[2];
    CHECK(luigi_meta_commit_many(c, race, 2, 1000, outcomes));
    int winner = outcomes[0].status == LUIGI_OK ? 0 : 1, loser = 1 - winner;
    REQUIRE(outcomes[winner].status == LUIGI_OK && outcomes[winner].version == 1);
    REQUIRE(outcomes[loser].status == LUIGI_ERR_CONFLICT && outcomes[loser].latest == 1);
    printf("race on version 0: %s won (version 1), the other got LUIGI_ERR_CONFLICT (latest 1)\n",
           winner == 0 ? "writer a" : "writer b");

    /* The loser rebases on the latest version it was told about. */
    uint64_t version = 0, latest = 0;
    race[loser].base_version = outcomes[loser].latest;
    race[loser].txn_id = winner == 0 ? "writer-b-2" : "writer-a-2";
    CHECK(luigi_meta_commit(c, &race[loser], 1000, &version, &latest));
    REQUIRE(version == 2);

    /* A stale base is refused and names the latest version. */
    luigi_meta_file late = data_file("late.parquet", 1);
    luigi_meta_commit_request stale = {.version = LUIGI_META_COMMIT_VERSION, .table = "events", .table_len = 6,
                                       .base_version = 1, .txn_id = "late", .txn_id_len = 4,
                                       .adds = &late, .add_count = 1};
    REQUIRE(luigi_meta_commit(c, &stale, 1000, &version, &latest) == LUIGI_ERR_CONFLICT && latest == 2);
    printf("stale base 1 refused: %s\n", luigi_last_error_message());

    /* Compaction: the two small files out, one file in, same rows. Then
     * the leader crashes and the writer retries the very same commit. */
    luigi_meta_file merged = data_file("merged.parquet", 300);
    const char *removes[2] = {"part-a.parquet", "part-b.parquet"};
    size_t remove_lens[2] = {14, 14};
    luigi_meta_commit_request compact = {.version = LUIGI_META_COMMIT_VERSION, .table = "events", .table_len = 6,
                                         .base_version = 2, .txn_id = "compact-1", .txn_id_len = 9,
                                         .adds = &merged, .add_count = 1, .removes = removes,
                                         .remove_lens = remove_lens, .remove_count = 2};
    CHECK(luigi_meta_commit(c, &compact, 1000, &version, &latest));
    uint64_t leader = 0;
    CHECK(luigi_raft_cluster_leader(c, &leader));
    CHECK(luigi_raft_cluster_crash(c, leader));
    uint64_t again = 0;
    CHECK(luigi_meta_commit(c, &compact, 2000, &again, &latest));
    REQUIRE(again == version && version == 3);
    CHECK(luigi_raft_cluster_restart(c, leader));
    printf("compaction committed version %llu; its retry after leader %llu crashed returned %llu\n",
           (unsigned long long)version, (unsigned long long)leader, (unsigned long long)again);

    size_t count = 0;
    printf("  files at the latest version:\n");
    REQUIRE(print_files(c, LUIGI_META_LATEST, &count) == 300 && count == 1);
    printf("  files at version 2 (a snapshot read):\n");
    REQUIRE(print_files(c, 2, &count) == 300 && count == 2);
    CHECK(luigi_meta_latest(c, "events", 6, 1000, &latest));
    REQUIRE(latest == 3);

    luigi_buffer versions = {0};
    CHECK(luigi_meta_versions(c, "events", 6, 1000, &versions));
    REQUIRE(u32_at(versions.data) == 4); /* versions 0..3 */
    luigi_buffer_free(&versions);
    luigi_raft_cluster_free(c);
    printf("table_log.c: ok\n");
    return 0;
}
