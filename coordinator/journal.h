/* journal.h -- what the coordinator needs to resume its renders after a crash.
 *
 * Every render in flight has an append-only journal, STATE_DIR/render-ID.journal:
 * first its submission (enough to plan the render again), then one record
 * per accepted segment holding the segment's frames. Segments are committed
 * in groups: the records of every segment accepted in one round of the
 * coordinator's loop are appended, one fsync covers them all, and only then
 * do they count as landed; a commit record after the fsync says so. After a
 * crash (kill -9, power cut) the
 * coordinator replays every journal into a fresh plan and stitcher and only
 * dispatches the jobs that have no record: no landed segment is rendered
 * twice, and since the stitcher's bytes do not depend on arrival order the
 * files equal those of an uninterrupted render. A render that ends (delivered,
 * failed or cancelled) gets a finish record and its journal is removed.
 *
 * The files are untrusted input to replay: every length is range-checked
 * before anything is allocated, every record carries an xxh3 over its bytes,
 * and a segment's frames are checked again against the node's xxh3. Only the
 * records since the last commit may be torn (the crash hit them before their
 * fsync was done): from the first bad one on, the file is cut back, as long
 * as no intact record follows it. Damage anywhere else is an error and that
 * render is not resumed; the file is kept for inspection. Segments after the
 * last commit record are replayed too (a kill -9 leaves them whole), marked
 * as not counted yet: the coordinator that wrote them never reported them.
 *
 * Format (integers little-endian, version 2; version 1 has no commit records
 * and every segment in it was counted):
 *   file    = "SFJOURNL" | u32 version | record...
 *   record  = u32 type | u64 n_bytes | payload (n_bytes) | u64 xxh3 of the
 *             type, n_bytes and payload fields as stored
 *   SUBMIT  (1) = u32 render_id | i32 priority | i64 segment_frames | u8 force |
 *                 str session_path | str out_dir | str profile | blob client_id | blob yaml
 *   SEGMENT (2) = u64 job_index | u32 n_channels | u64 n_frames | u64 xxh3 |
 *                 str node_name | n_channels * n_frames float32, channel after channel
 *   FINISH  (3) = (empty)
 *   COMMIT  (4) = (empty): every segment record before it was synced and counted
 *   str, blob   = u32 n_bytes | bytes (str: no NUL)
 * The SEGMENT xxh3 is the node's, over the frames as the wire carries them
 * (float32 little-endian), which is also how they are stored.
 */
#ifndef JOURNAL_H
#define JOURNAL_H

#include "sf/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct journal journal_t;

/* Limits that journal_create and replay enforce (replay: as damage). */
#define JOURNAL_MAX_CLIENT_ID 255 /* bytes: a ZeroMQ routing id */

/* A submission: everything needed to plan the render again. */
typedef struct {
    uint32_t render_id;       /* 1.. */
    int32_t priority;         /* as submitted */
    const char *session_path; /* absolute, ..SF_WIRE_MAX_TEXT bytes */
    const uint8_t *yaml;      /* the session file's bytes, 1..SF_WIRE_MAX_YAML_BYTES */
    size_t n_yaml_bytes;
    const char *out_dir;      /* absolute, ..SF_WIRE_MAX_TEXT bytes */
    int64_t segment_frames;   /* as submitted, 0 = the planner's default; ..SF_WIRE_MAX_FRAMES */
    bool force;               /* replace existing deliverables */
    const char *profile;      /* "" (or NULL when creating) = the session's; ..SF_WIRE_MAX_TEXT bytes */
    const uint8_t *client_id; /* ZeroMQ routing id of the submitting client */
    size_t n_client_id;       /* 0..JOURNAL_MAX_CLIENT_ID; 0: embedded, no client */
} journal_submit_t;

/* One accepted segment as replayed. Pointers are valid during the callback only. */
typedef struct {
    uint64_t job_index;    /* in the plan; the callee checks it against its plan */
    uint32_t n_channels;   /* 1..SF_WIRE_MAX_CHANNELS */
    uint64_t n_frames;     /* 1..; n_channels * n_frames * 4 <= SF_WIRE_MAX_MESSAGE_BYTES */
    const float *planar;   /* channel after channel, as stitch_accept takes them; 64-byte aligned */
    uint64_t xxh3;         /* the node's checksum, already checked against the frames */
    const char *node_name; /* who rendered it; may be "" */
    bool counted;          /* false: after the last commit; whoever wrote it never reported it as landed */
} journal_segment_t;

/* Creates STATE_DIR/render-ID.journal (exclusively; STATE_DIR and missing
 * parents are made, mode 0700) and writes the submission record; the file
 * and its folder are fsynced before returning, so a render whose creation
 * returned SF_OK is resumed after a crash. On failure no file is left.
 * SF_E_INPUT when a field is out of range, SF_E_IO naming the file when it
 * exists already (a render id used twice) or cannot be written, SF_E_NOMEM. */
sf_rc journal_create(const char *state_dir, const journal_submit_t *sub, journal_t **out, sf_err_t *err);

/* Appends the segment of plan job `job_index`: n_channels * n_frames floats,
 * channel after channel, with the xxh3 the node sent over them and the node's
 * name (NULL: ""). The record is not synced: the segment counts as landed
 * only after journal_commit. On failure the file is cut back to where it
 * was, so the journal still replays and the job can be rendered again.
 * SF_E_INPUT for counts out of range; SF_E_INTERNAL when the job was
 * journalled before or the xxh3 does not match the frames (nothing is kept);
 * SF_E_IO naming the file when writing fails, or after an earlier failure
 * left the file's tail unknown (every later append and commit fails then:
 * the render must be failed or the coordinator restarted). */
sf_rc journal_append_segment(journal_t *j, uint64_t job_index, uint32_t n_channels, uint64_t n_frames,
                             const float *planar, uint64_t xxh3, const char *node_name, sf_err_t *err);

/* Makes every segment appended since the last commit durable with one
 * fsync, then appends a commit record (unsynced: the next commit's fsync
 * takes it along) so that a replay knows they were counted. The caller
 * counts them as landed when it returns SF_OK, and at once. Nothing to
 * commit: SF_OK without a sync. SF_E_IO naming the file when the sync fails
 * (the kernel may have dropped the data, so the journal takes no more) or
 * failed before. */
sf_rc journal_commit(journal_t *j, sf_err_t *err);

/* The render ended (delivered, failed or cancelled): appends a finish record,
 * removes the file and syncs the folder. Always frees the journal and sets
 * *j to NULL (NULL-safe). SF_E_IO naming the file when it cannot be removed;
 * if the finish record was written, replay removes the file then. */
sf_rc journal_finish(journal_t **j, sf_err_t *err);

/* Closes without removing (the coordinator stops; the render resumes at the
 * next start). NULL-safe, sets *j to NULL. */
void journal_close(journal_t **j);

uint32_t journal_render_id(const journal_t *j);
const char *journal_path(const journal_t *j);

/* Callbacks of journal_replay. A callback that returns non-OK (setting *err)
 * stops that journal: no more calls for it but on_error with that error.
 * A journal handed over by on_submit has its segments that are not
 * `counted` pending: journal_commit syncs them and marks them counted, after
 * which the callee reports them as landed. */
typedef struct {
    /* Once per journal to resume, first. `sub` is valid during the call
     * only. *j is the journal, reopened for appending: to keep it, store it
     * and set *j = NULL (it is then the callee's to close or finish);
     * otherwise replay closes it, keeping the file. Required. */
    sf_rc (*on_submit)(void *ctx, const journal_submit_t *sub, journal_t **j, sf_err_t *err);
    /* Each intact segment record, in file order. Required. */
    sf_rc (*on_segment)(void *ctx, uint32_t render_id, const journal_segment_t *seg, sf_err_t *err);
    /* A journal that is not resumed, or not completely: `e` names the file and
     * what is wrong (for damage, the record's byte offset). Damaged journals
     * are kept for inspection; one whose submission record is incomplete (the
     * crash hit journal_create, which never returned) is removed. It follows
     * on_submit for the same render when a callback failed or the file could
     * not be read again while replaying it: the callee then drops that render
     * (and closes its journal if it took it). Optional. */
    void (*on_error)(void *ctx, uint32_t render_id, const sf_err_t *e);
} journal_replay_fns_t;

/* Reads every journal in state_dir, in render id order. Finished ones
 * (a finish record whose file removal did not happen) are removed without a
 * call. Every other one is checked completely first -- records, checksums,
 * the frames against the node's xxh3, no job index twice -- and a torn last
 * record is cut off; then it is replayed: on_submit, on_segment for each
 * segment in file order. A damaged journal gets on_error (SF_E_IO, naming the
 * file and the record's byte offset) and the others are still replayed.
 * *max_render_id (may be NULL) receives the highest render id among the
 * journal files, finished or damaged ones included (0: none), so new renders
 * get fresh ids. A missing state_dir holds no journals.
 * Returns SF_OK when every journal was resumed or reported through on_error;
 * SF_E_IO when state_dir cannot be listed, SF_E_NOMEM (journals replayed by
 * then stay handed over). */
sf_rc journal_replay(const char *state_dir, const journal_replay_fns_t *fns, void *ctx, uint32_t *max_render_id,
                     sf_err_t *err);

/* The coordinator's incarnation: reads STATE_DIR/incarnation (a decimal
 * number and a newline; missing: 0), stores the next one (written aside,
 * fsynced, renamed over it, folder fsynced) and returns it in *out (1..).
 * Called once at every start, so leases issued by an earlier incarnation
 * never match this one's. SF_E_IO naming the file when it is garbled (it is
 * left as it is: an operator decides) or cannot be read or written. */
sf_rc journal_next_incarnation(const char *state_dir, uint32_t *out, sf_err_t *err);

#endif
