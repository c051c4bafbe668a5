/* _luigi_raft.c — luigi_node.RaftNode and luigi_node.Ready, and the Raft helpers
 * RaftCluster shares (status, bytes and path arguments). */

#include "_luigi.h"

/* ============================================================ Raft: shared */

/* callable(*args), stealing the n new references in args; NULL entries (a
 * failed conversion, exception set) make it fail without calling. */
static PyObject *
call_stealing(PyObject *callable, PyObject **args, size_t n)
{
    PyObject *result = NULL;
    int ok = 1;
    for (size_t i = 0; i < n; i++) {
        if (args[i] == NULL) {
            ok = 0;
        }
    }
    if (ok) {
        result = PyObject_Vectorcall(callable, args, n, NULL);
    }
    for (size_t i = 0; i < n; i++) {
        Py_XDECREF(args[i]);
    }
    return result;
}

/* A status struct ready for luigi_raft_get_status / _cluster_node_status. */
void
raft_status_init(luigi_raft_status *status)
{
    memset(status, 0, sizeof *status);
    status->version = LUIGI_RAFT_STATUS_VERSION;
}

/* Builds a luigi_node.RaftStatus (a frozen dataclass in _raft.py, fields in
 * the order passed here) from the library's status struct, filled with
 * status `rc`. */
PyObject *
make_raft_status(module_state *st, luigi_status rc, const luigi_raft_status *s)
{
    if (rc != LUIGI_OK) {
        return raise_status(st, rc);
    }
    if (s->role >= 4) {
        PyErr_Format(st->LuigiError, "libluigi reported an unknown raft role %u", (unsigned)s->role);
        return NULL;
    }
    PyObject *args[11] = {NULL};
    args[0] = Py_NewRef(st->role_names[s->role]);
    args[1] = PyLong_FromUnsignedLongLong(s->id);
    args[2] = PyLong_FromUnsignedLongLong(s->term);
    args[3] = s->vote == 0 ? Py_NewRef(Py_None) : PyLong_FromUnsignedLongLong(s->vote);
    args[4] = s->leader == 0 ? Py_NewRef(Py_None) : PyLong_FromUnsignedLongLong(s->leader);
    args[5] = PyLong_FromUnsignedLongLong(s->commit);
    args[6] = PyLong_FromUnsignedLongLong(s->applied);
    args[7] = PyLong_FromUnsignedLongLong(s->first_index);
    args[8] = PyLong_FromUnsignedLongLong(s->last_index);
    args[9] = PyLong_FromUnsignedLongLong(s->voters);
    args[10] = PyLong_FromUnsignedLongLong(s->learners);
    return call_stealing(st->RaftStatusType, args, 11);
}

/* A bytes-like argument as (pointer, length), never a NULL pointer (for the
 * library, NULL can mean "absent", e.g. luigi_raft_cluster_cas's expected). */
int
get_bytes(PyObject *obj, Py_buffer *view)
{
    if (PyUnicode_Check(obj)) {
        PyErr_SetString(PyExc_TypeError, "expected bytes, not str");
        return -1;
    }
    if (PyObject_GetBuffer(obj, view, PyBUF_SIMPLE) < 0) {
        return -1;
    }
    if (view->buf == NULL) {
        view->buf = (void *)"";
    }
    return 0;
}

/* A path (str, bytes or os.PathLike) or None, as a new bytes object (or NULL
 * with *out = NULL for None). */
int
get_path(PyObject *obj, PyObject **out)
{
    *out = NULL;
    if (obj == NULL || obj == Py_None) {
        return 0;
    }
    return PyUnicode_FSConverter(obj, out) ? 0 : -1;
}

/* ============================================================ RaftNode */

typedef struct {
    PyObject_HEAD
    luigi_raft *raft;
    PyThread_type_lock lock; /* guards the node and every ready batch it handed out */
    uint64_t id;
    int ready_out;           /* a Ready was handed out and neither advanced nor dropped */
    ReplicaObject *replica;  /* attached replica (strong), or NULL: ready() applies to it */
} RaftNodeObject;

typedef struct {
    PyObject_HEAD
    RaftNodeObject *node;    /* strong reference */
    luigi_raft_ready *ready; /* the library's batch; NULL once advanced */
    PyObject *messages;      /* list[tuple[int, bytes]] */
    PyObject *committed;     /* list[Entry] */
    PyObject *read_states;   /* list[tuple[int, bytes]] */
    PyObject *snapshot;      /* tuple[int, int, bytes] or None */
    PyObject *hard_state;    /* HardState or None: what the library persisted ... */
    PyObject *entries;       /* list[Entry]: ... the log entries it appended ... */
    PyObject *must_sync;     /* bool: ... and whether that needed an fdatasync */
} ReadyObject;

#define READY_COPY_NO_MEMORY (-1)

/* A copy of a ready batch's contents in C memory, made while holding the
 * node's lock (with the GIL released), so Python objects are built only after
 * the lock is released. */
typedef struct {
    uint64_t to;
    luigi_buffer bytes;
} ready_message;

typedef struct {
    uint64_t index, term;
    uint32_t kind;
    luigi_buffer data;
} ready_entry;

typedef struct {
    uint64_t index;
    luigi_buffer context;
} ready_read;

typedef struct {
    luigi_raft_counts counts;
    ready_message *messages;
    ready_entry *entries;
    ready_read *reads;
    uint64_t snap_index, snap_term;
    luigi_buffer snap_data;
    luigi_raft_persisted persisted;
    ready_entry *persisted_entries;
} ready_copy;

static void
ready_entries_free(ready_entry *entries, size_t n)
{
    if (entries != NULL) {
        for (size_t i = 0; i < n; i++) {
            luigi_buffer_free(&entries[i].data);
        }
        PyMem_RawFree(entries);
    }
}

typedef luigi_status (*ready_entry_fn)(const luigi_raft_ready *, size_t, uint64_t *, uint64_t *,
                                       uint32_t *, luigi_buffer *);

/* Copies n entries through `get` into a new array; NULL (with *s set) on error. */
static ready_entry *
ready_entries_copy(const luigi_raft_ready *rd, size_t n, ready_entry_fn get, luigi_status *s)
{
    ready_entry *entries = PyMem_RawCalloc(n > 0 ? n : 1, sizeof(ready_entry));
    if (entries == NULL) {
        *s = READY_COPY_NO_MEMORY;
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        ready_entry *e = &entries[i];
        *s = get(rd, i, &e->index, &e->term, &e->kind, &e->data);
        if (*s != LUIGI_OK) {
            ready_entries_free(entries, n);
            return NULL;
        }
    }
    *s = LUIGI_OK;
    return entries;
}

static void
ready_copy_free(ready_copy *c)
{
    if (c->messages != NULL) {
        for (size_t i = 0; i < c->counts.messages; i++) {
            luigi_buffer_free(&c->messages[i].bytes);
        }
        PyMem_RawFree(c->messages);
    }
    ready_entries_free(c->entries, c->counts.committed_entries);
    ready_entries_free(c->persisted_entries, c->persisted.entries);
    if (c->reads != NULL) {
        for (size_t i = 0; i < c->counts.read_states; i++) {
            luigi_buffer_free(&c->reads[i].context);
        }
        PyMem_RawFree(c->reads);
    }
    luigi_buffer_free(&c->snap_data);
    memset(c, 0, sizeof *c);
}

/* Runs without the GIL, with the node's lock held. `c` starts zeroed. */
static luigi_status
ready_copy_fill(const luigi_raft_ready *rd, ready_copy *c)
{
    c->counts.version = LUIGI_RAFT_COUNTS_VERSION;
    luigi_status s = luigi_raft_ready_counts(rd, &c->counts);
    if (s != LUIGI_OK) {
        memset(&c->counts, 0, sizeof c->counts);
        return s;
    }
    luigi_raft_counts n = c->counts;
    c->messages = PyMem_RawCalloc(n.messages > 0 ? n.messages : 1, sizeof(ready_message));
    c->reads = PyMem_RawCalloc(n.read_states > 0 ? n.read_states : 1, sizeof(ready_read));
    if (c->messages == NULL || c->reads == NULL) {
        return READY_COPY_NO_MEMORY;
    }
    for (size_t i = 0; i < n.messages; i++) {
        s = luigi_raft_ready_message(rd, i, &c->messages[i].to, &c->messages[i].bytes);
        if (s != LUIGI_OK) {
            return s;
        }
    }
    c->entries = ready_entries_copy(rd, n.committed_entries, luigi_raft_ready_entry, &s);
    if (c->entries == NULL) {
        return s;
    }
    c->persisted.version = LUIGI_RAFT_PERSISTED_VERSION;
    s = luigi_raft_ready_persisted(rd, &c->persisted);
    if (s != LUIGI_OK) {
        c->persisted.entries = 0;
        return s;
    }
    c->persisted_entries =
        ready_entries_copy(rd, c->persisted.entries, luigi_raft_ready_persisted_entry, &s);
    if (c->persisted_entries == NULL) {
        return s;
    }
    for (size_t i = 0; i < n.read_states; i++) {
        s = luigi_raft_ready_read_state(rd, i, &c->reads[i].index, &c->reads[i].context);
        if (s != LUIGI_OK) {
            return s;
        }
    }
    if (n.has_snapshot) {
        s = luigi_raft_ready_snapshot(rd, &c->snap_index, &c->snap_term, &c->snap_data);
        if (s != LUIGI_OK) {
            return s;
        }
    }
    return LUIGI_OK;
}

static inline PyObject *
buffer_bytes(const luigi_buffer *b)
{
    return PyBytes_FromStringAndSize((const char *)b->data, (Py_ssize_t)b->len);
}

/* (u64, bytes) */
static PyObject *
pair_u64_bytes(uint64_t v, const luigi_buffer *b)
{
    PyObject *n = PyLong_FromUnsignedLongLong(v);
    PyObject *d = buffer_bytes(b);
    PyObject *t = NULL;
    if (n != NULL && d != NULL) {
        t = PyTuple_Pack(2, n, d);
    }
    Py_XDECREF(n);
    Py_XDECREF(d);
    return t;
}

static PyObject *
make_entry(module_state *st, uint64_t index, uint64_t term, uint32_t kind,
           const luigi_buffer *data)
{
    if (kind > LUIGI_ENTRY_CONF_CHANGE) {
        PyErr_Format(st->LuigiError, "libluigi reported an unknown entry kind %u", (unsigned)kind);
        return NULL;
    }
    PyObject *args[4];
    args[0] = PyLong_FromUnsignedLongLong(index);
    args[1] = PyLong_FromUnsignedLongLong(term);
    args[2] = Py_NewRef(st->entry_kinds[kind]);
    args[3] = buffer_bytes(data);
    return call_stealing(st->EntryType, args, 4);
}

/* list[Entry] from copied entries. */
static PyObject *
entry_list(module_state *st, const ready_entry *entries, size_t n)
{
    PyObject *list = PyList_New((Py_ssize_t)n);
    for (size_t i = 0; list != NULL && i < n; i++) {
        const ready_entry *e = &entries[i];
        PyObject *entry = make_entry(st, e->index, e->term, e->kind, &e->data);
        if (entry == NULL) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, entry);
    }
    return list;
}

/* Fills the Python-side fields of a Ready from the C copy; -1 on error. */
static int
ready_build(module_state *st, ReadyObject *r, const ready_copy *c)
{
    const luigi_raft_counts *n = &c->counts;
    r->messages = PyList_New((Py_ssize_t)n->messages);
    r->read_states = PyList_New((Py_ssize_t)n->read_states);
    r->committed = entry_list(st, c->entries, n->committed_entries);
    r->entries = entry_list(st, c->persisted_entries, c->persisted.entries);
    r->must_sync = PyBool_FromLong(c->persisted.must_sync);
    if (r->messages == NULL || r->committed == NULL || r->read_states == NULL ||
        r->entries == NULL) {
        return -1;
    }
    if (c->persisted.has_hard_state) {
        PyObject *args[3];
        args[0] = PyLong_FromUnsignedLongLong(c->persisted.term);
        args[1] = c->persisted.vote ? PyLong_FromUnsignedLongLong(c->persisted.vote)
                                    : Py_NewRef(Py_None);
        args[2] = PyLong_FromUnsignedLongLong(c->persisted.commit);
        r->hard_state = call_stealing(st->HardStateType, args, 3);
        if (r->hard_state == NULL) {
            return -1;
        }
    }
    else {
        r->hard_state = Py_NewRef(Py_None);
    }
    for (size_t i = 0; i < n->messages; i++) {
        PyObject *t = pair_u64_bytes(c->messages[i].to, &c->messages[i].bytes);
        if (t == NULL) {
            return -1;
        }
        PyList_SET_ITEM(r->messages, (Py_ssize_t)i, t);
    }
    for (size_t i = 0; i < n->read_states; i++) {
        PyObject *t = pair_u64_bytes(c->reads[i].index, &c->reads[i].context);
        if (t == NULL) {
            return -1;
        }
        PyList_SET_ITEM(r->read_states, (Py_ssize_t)i, t);
    }
    if (n->has_snapshot) {
        r->snapshot = Py_BuildValue("(KKy#)", (unsigned long long)c->snap_index,
                                    (unsigned long long)c->snap_term, (const char *)c->snap_data.data,
                                    (Py_ssize_t)c->snap_data.len);
        if (r->snapshot == NULL) {
            return -1;
        }
    }
    else {
        r->snapshot = Py_NewRef(Py_None);
    }
    return 0;
}

static int
check_raft_options(module_state *st, PyObject *election, PyObject *heartbeat, PyObject *seed,
                   luigi_raft_options *o, PyObject *inflight, PyObject *max_size)
{
    if (opt_u32(st, election, "election_tick", &o->election_tick) < 0 ||
        opt_u32(st, heartbeat, "heartbeat_tick", &o->heartbeat_tick) < 0 ||
        opt_u64(st, seed, "seed", &o->seed) < 0 ||
        opt_u32(st, inflight, "max_inflight", &o->max_inflight_messages) < 0 ||
        opt_u64(st, max_size, "max_size_per_message", &o->max_size_per_message) < 0) {
        return -1;
    }
    return 0;
}

static PyObject *
RaftNode_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"id", "voters", "storage", "election_tick", "heartbeat_tick",
                             "pre_vote", "check_quorum", "seed", "max_inflight",
                             "max_size_per_message", "group", NULL};
    module_state *st = state_of_type(type);
    PyObject *id_obj, *voters_obj, *storage_obj = Py_None, *election = NULL, *heartbeat = NULL;
    PyObject *seed = NULL, *inflight = NULL, *max_size = NULL, *group_obj = NULL;
    int pre_vote = 1, check_quorum = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO|$OOOppOOOO:RaftNode", kwlist, &id_obj,
                                     &voters_obj, &storage_obj, &election, &heartbeat, &pre_vote,
                                     &check_quorum, &seed, &inflight, &max_size, &group_obj)) {
        return NULL;
    }
    uint64_t group = 0;
    if (group_obj != NULL && as_u64(st, group_obj, "group", &group) < 0) {
        return NULL;
    }
    luigi_raft_options options;
    luigi_raft_options_init(&options);
    options.version = LUIGI_RAFT_OPTIONS_VERSION;
    options.pre_vote = pre_vote ? 1 : 0;
    options.check_quorum = check_quorum ? 1 : 0;
    uint64_t id;
    if (as_u64(st, id_obj, "id", &id) < 0 ||
        check_raft_options(st, election, heartbeat, seed, &options, inflight, max_size) < 0) {
        return NULL;
    }
    uint64_t *voters = NULL;
    size_t voter_count = 0;
    if (collect_ids(st, voters_obj, "voters", &voters, &voter_count) < 0) {
        return NULL;
    }
    PyObject *path = NULL;
    if (get_path(storage_obj, &path) < 0) {
        PyMem_Free(voters);
        return NULL;
    }
    options.data_dir = path != NULL ? PyBytes_AS_STRING(path) : NULL;

    /* Object and lock first: on any later failure tp_dealloc frees what exists. */
    RaftNodeObject *self = (RaftNodeObject *)type->tp_alloc(type, 0);
    if (self == NULL || new_lock(&self->lock) < 0) {
        Py_XDECREF(self);
        PyMem_Free(voters);
        Py_XDECREF(path);
        return NULL;
    }
    self->id = id;
    self->ready_out = 0;
    luigi_status s;
    Py_BEGIN_ALLOW_THREADS /* a durable node opens and replays its log */
    s = luigi_raft_new_in_group(group, id, voters, voter_count, &options, &self->raft);
    Py_END_ALLOW_THREADS
    PyMem_Free(voters);
    Py_XDECREF(path);
    if (s != LUIGI_OK) {
        return raise_and_drop(st, s, self);
    }
    return (PyObject *)self;
}

static void
RaftNode_dealloc(RaftNodeObject *self)
{
    /* Ready objects keep us alive, so none of them can be in use now. */
    luigi_raft_free(self->raft); /* closes a durable node's files */
    self->raft = NULL;
    Py_CLEAR(self->replica);
    free_lock(&self->lock);
    free_instance(self);
}

static PyObject *
RaftNode_tick(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    RaftNodeObject *self = (RaftNodeObject *)op;
    luigi_status s;
    WITH_LOCK(self->lock, s = luigi_raft_tick(self->raft));
    return none_or_raise(state_of(op), s);
}

typedef luigi_status (*raft_bytes_fn)(luigi_raft *, const uint8_t *, size_t);

/* f(raft, bytes) for a method taking one bytes-like argument. */
static PyObject *
raft_bytes_call(PyObject *op, PyObject *arg, raft_bytes_fn f)
{
    RaftNodeObject *self = (RaftNodeObject *)op;
    Py_buffer view;
    if (get_bytes(arg, &view) < 0) {
        return NULL;
    }
    luigi_status s;
    WITH_LOCK(self->lock, s = f(self->raft, VIEW_DATA(view)));
    PyBuffer_Release(&view);
    return none_or_raise(state_of(op), s);
}

static PyObject *
RaftNode_step(PyObject *op, PyObject *message)
{
    return raft_bytes_call(op, message, luigi_raft_step);
}

/* ------------------------------------------------ batch entry points */

/* Frames: (u32 LE length | message)*, the format of drain()'s buffers. */

/* A growable byte buffer in raw memory (usable without the GIL). */
typedef struct {
    uint8_t *data;
    size_t len, cap;
} grow_buf;

static int
grow_put(grow_buf *b, const void *src, size_t n)
{
    if (n > SIZE_MAX - b->len) {
        return -1;
    }
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n) {
            if (cap > SIZE_MAX / 2) {
                return -1;
            }
            cap *= 2;
        }
        uint8_t *p = PyMem_RawRealloc(b->data, cap);
        if (p == NULL) {
            return -1;
        }
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, src, n);
    b->len += n;
    return 0;
}

static int
grow_put_le(grow_buf *b, uint64_t v, size_t width)
{
    uint8_t bytes[8];
    for (size_t i = 0; i < width; i++) {
        bytes[i] = (uint8_t)(v >> (8 * i));
    }
    return grow_put(b, bytes, width);
}

static PyObject *
RaftNode_step_many(PyObject *op, PyObject *arg)
{
    RaftNodeObject *self = (RaftNodeObject *)op;
    module_state *st = state_of(op);
    Py_buffer view;
    if (get_bytes(arg, &view) < 0) {
        return NULL;
    }
    const uint8_t *data = view.buf;
    size_t len = (size_t)view.len;
    /* The framing is checked whole before anything is stepped. */
    for (size_t at = 0; at < len;) {
        if (len - at < 4 || read_u32le(data + at) > len - at - 4) {
            PyBuffer_Release(&view);
            PyErr_Format(st->DecodeError, "frame at offset %zu runs past the end of %zu bytes", at, len);
            return NULL;
        }
        at += 4 + read_u32le(data + at);
    }
    size_t refused = 0;
    lock_acquire(self->lock);
    Py_BEGIN_ALLOW_THREADS
    for (size_t at = 0; at < len;) {
        uint32_t n = read_u32le(data + at);
        if (luigi_raft_step(self->raft, data + at + 4, n) != LUIGI_OK) {
            refused++;
        }
        at += 4 + (size_t)n;
    }
    lock_release(self->lock);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    return PyLong_FromSize_t(refused);
}

typedef struct {
    uint64_t to;
    grow_buf frames;
} peer_frames;

typedef struct {
    peer_frames *peers;
    size_t count, cap;
    grow_buf committed;
    int has_snapshot;
    uint64_t snap_index, snap_term;
    luigi_buffer snap_data;
    size_t batches;
} drained;

static void
drained_free(drained *d)
{
    for (size_t i = 0; i < d->count; i++) {
        PyMem_RawFree(d->peers[i].frames.data);
    }
    PyMem_RawFree(d->peers);
    PyMem_RawFree(d->committed.data);
    luigi_buffer_free(&d->snap_data);
    memset(d, 0, sizeof *d);
}

static grow_buf *
drained_peer(drained *d, uint64_t to)
{
    for (size_t i = 0; i < d->count; i++) {
        if (d->peers[i].to == to) {
            return &d->peers[i].frames;
        }
    }
    if (d->count == d->cap) {
        size_t cap = d->cap ? 2 * d->cap : 8;
        peer_frames *p = PyMem_RawRealloc(d->peers, cap * sizeof *p);
        if (p == NULL) {
            return NULL;
        }
        d->peers = p;
        d->cap = cap;
    }
    d->peers[d->count] = (peer_frames){.to = to};
    return &d->peers[d->count++].frames;
}

/* One ready batch into `d`; runs without the GIL, with the node's lock held. */
static luigi_status
drain_one(const luigi_raft_ready *rd, drained *d)
{
    luigi_raft_counts n = {.version = LUIGI_RAFT_COUNTS_VERSION};
    luigi_status s = luigi_raft_ready_counts(rd, &n);
    if (s == LUIGI_OK && n.has_snapshot) {
        /* A later snapshot supersedes an earlier one and what preceded it. */
        luigi_buffer_free(&d->snap_data);
        s = luigi_raft_ready_snapshot(rd, &d->snap_index, &d->snap_term, &d->snap_data);
        d->has_snapshot = s == LUIGI_OK;
    }
    for (size_t i = 0; s == LUIGI_OK && i < n.messages; i++) {
        uint64_t to = 0;
        luigi_buffer b = {0};
        s = luigi_raft_ready_message(rd, i, &to, &b);
        if (s != LUIGI_OK) {
            break;
        }
        grow_buf *g = drained_peer(d, to);
        if (g == NULL || b.len > UINT32_MAX || grow_put_le(g, b.len, 4) < 0 || grow_put(g, b.data, b.len) < 0) {
            s = READY_COPY_NO_MEMORY;
        }
        luigi_buffer_free(&b);
    }
    for (size_t i = 0; s == LUIGI_OK && i < n.committed_entries; i++) {
        uint64_t index = 0, term = 0;
        uint32_t kind = 0;
        luigi_buffer b = {0};
        s = luigi_raft_ready_entry(rd, i, &index, &term, &kind, &b);
        if (s != LUIGI_OK) {
            break;
        }
        grow_buf *g = &d->committed;
        if (b.len > UINT32_MAX || grow_put_le(g, index, 8) < 0 || grow_put_le(g, term, 8) < 0 ||
            grow_put_le(g, kind, 1) < 0 || grow_put_le(g, b.len, 4) < 0 || grow_put(g, b.data, b.len) < 0) {
            s = READY_COPY_NO_MEMORY;
        }
        luigi_buffer_free(&b);
    }
    return s;
}

static PyObject *
RaftNode_drain(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    RaftNodeObject *self = (RaftNodeObject *)op;
    module_state *st = state_of(op);
    if (self->ready_out) {
        PyErr_SetString(st->TransactionStateError,
                        "a Ready is handed out: advance it (or drop it) before drain()");
        return NULL;
    }
    drained d;
    memset(&d, 0, sizeof d);
    luigi_status s = LUIGI_OK;
    lock_acquire(self->lock);
    PyThread_type_lock replica_lock = self->replica != NULL ? self->replica->lock : NULL;
    if (replica_lock != NULL) {
        lock_acquire(replica_lock);
    }
    Py_BEGIN_ALLOW_THREADS /* persists (and, when durable, fdatasyncs) every batch */
    for (;;) {
        luigi_raft_ready *rd = NULL;
        s = luigi_raft_take_ready(self->raft, &rd);
        if (s != LUIGI_OK || rd == NULL) {
            break;
        }
        s = drain_one(rd, &d);
        if (s == LUIGI_OK) {
            s = luigi_raft_advance(self->raft, rd);
        }
        luigi_raft_ready_free(rd);
        if (s != LUIGI_OK) {
            break;
        }
        d.batches++;
    }
    if (replica_lock != NULL) {
        lock_release(replica_lock);
    }
    lock_release(self->lock);
    Py_END_ALLOW_THREADS
    if (s != LUIGI_OK) {
        drained_free(&d);
        return s == READY_COPY_NO_MEMORY ? PyErr_NoMemory() : raise_status(st, s);
    }
    PyObject *messages = PyDict_New();
    PyObject *committed = PyBytes_FromStringAndSize((const char *)d.committed.data, (Py_ssize_t)d.committed.len);
    PyObject *result = NULL;
    for (size_t i = 0; messages != NULL && committed != NULL && i < d.count; i++) {
        PyObject *key = PyLong_FromUnsignedLongLong(d.peers[i].to);
        PyObject *value = PyBytes_FromStringAndSize((const char *)d.peers[i].frames.data,
                                                    (Py_ssize_t)d.peers[i].frames.len);
        int rc = key != NULL && value != NULL ? PyDict_SetItem(messages, key, value) : -1;
        Py_XDECREF(key);
        Py_XDECREF(value);
        if (rc < 0) {
            Py_CLEAR(messages);
        }
    }
    PyObject *snapshot = d.has_snapshot ? Py_BuildValue("(KKy#)", (unsigned long long)d.snap_index,
                                                        (unsigned long long)d.snap_term, (const char *)d.snap_data.data,
                                                        (Py_ssize_t)d.snap_data.len)
                                        : Py_NewRef(Py_None);
    if (messages != NULL && committed != NULL && snapshot != NULL) {
        result = Py_BuildValue("(OOOn)", messages, committed, snapshot, (Py_ssize_t)d.batches);
    }
    Py_XDECREF(snapshot);
    Py_XDECREF(messages);
    Py_XDECREF(committed);
    drained_free(&d);
    return result;
}

static PyObject *
RaftNode_propose(PyObject *op, PyObject *data)
{
    RaftNodeObject *self = (RaftNodeObject *)op;
    Py_buffer view;
    if (get_bytes(data, &view) < 0) {
        return NULL;
    }
    uint64_t index = 0;
    luigi_status s;
    WITH_LOCK(self->lock, s = luigi_raft_propose(self->raft, VIEW_DATA(view), &index));
    PyBuffer_Release(&view);
    return u64_or_raise(state_of(op), s, index);
}

static PyObject *
RaftNode_campaign(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    RaftNodeObject *self = (RaftNodeObject *)op;
    luigi_status s;
    WITH_LOCK(self->lock, s = luigi_raft_campaign(self->raft));
    return none_or_raise(state_of(op), s);
}

static PyObject *
RaftNode_propose_conf_change(PyObject *op, PyObject *const *args, Py_ssize_t nargs)
{
    RaftNodeObject *self = (RaftNodeObject *)op;
    module_state *st = state_of(op);
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError,
                     "propose_conf_change() takes exactly 2 arguments (%zd given)", nargs);
        return NULL;
    }
    if (!PyUnicode_Check(args[0])) {
        PyErr_Format(PyExc_TypeError, "kind must be str, not %.100s", Py_TYPE(args[0])->tp_name);
        return NULL;
    }
    uint32_t kind;
    if (PyUnicode_CompareWithASCIIString(args[0], "add_voter") == 0) {
        kind = LUIGI_CONF_ADD_VOTER;
    }
    else if (PyUnicode_CompareWithASCIIString(args[0], "remove_node") == 0) {
        kind = LUIGI_CONF_REMOVE_NODE;
    }
    else if (PyUnicode_CompareWithASCIIString(args[0], "add_learner") == 0) {
        kind = LUIGI_CONF_ADD_LEARNER;
    }
    else {
        PyErr_Format(st->LuigiValueError,
                     "kind must be 'add_voter', 'remove_node' or 'add_learner', not %R", args[0]);
        return NULL;
    }
    uint64_t node, index = 0;
    if (as_u64(st, args[1], "node", &node) < 0) {
        return NULL;
    }
    luigi_status s;
    WITH_LOCK(self->lock, s = luigi_raft_propose_conf_change(self->raft, kind, node, &index));
    return u64_or_raise(st, s, index);
}

static PyObject *
RaftNode_transfer_leader(PyObject *op, PyObject *to_obj)
{
    RaftNodeObject *self = (RaftNodeObject *)op;
    uint64_t to;
    if (as_u64(state_of(op), to_obj, "to", &to) < 0) {
        return NULL;
    }
    luigi_status s;
    WITH_LOCK(self->lock, s = luigi_raft_transfer_leader(self->raft, to));
    return none_or_raise(state_of(op), s);
}

static PyObject *
RaftNode_read_index(PyObject *op, PyObject *context)
{
    return raft_bytes_call(op, context, luigi_raft_read_index);
}

static PyObject *
RaftNode_compact(PyObject *op, PyObject *const *args, Py_ssize_t nargs)
{
    RaftNodeObject *self = (RaftNodeObject *)op;
    module_state *st = state_of(op);
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "compact() takes exactly 2 arguments (%zd given)", nargs);
        return NULL;
    }
    uint64_t index;
    if (as_u64(st, args[0], "index", &index) < 0) {
        return NULL;
    }
    Py_buffer view;
    if (get_bytes(args[1], &view) < 0) {
        return NULL;
    }
    luigi_status s;
    lock_acquire(self->lock);
    Py_BEGIN_ALLOW_THREADS /* writes and syncs a snapshot file when durable */
    s = luigi_raft_compact(self->raft, index, VIEW_DATA(view));
    lock_release(self->lock);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    return none_or_raise(state_of(op), s);
}

static void
ready_discard(RaftNodeObject *node, luigi_raft_ready *rd)
{
    WITH_LOCK(node->lock, luigi_raft_ready_free(rd));
}

static PyObject *
RaftNode_ready(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    RaftNodeObject *self = (RaftNodeObject *)op;
    module_state *st = state_of(op);
    if (self->ready_out) {
        PyErr_SetString(st->TransactionStateError,
                        "the previous Ready was not advanced: call advance(ready) first");
        return NULL;
    }
    self->ready_out = 1; /* under the GIL: a concurrent ready() is refused above */
    luigi_raft_ready *rd = NULL;
    ready_copy copy;
    memset(&copy, 0, sizeof copy);
    luigi_status s, cs = LUIGI_OK;
    /* An attached replica takes the batch's committed transactions. Read
     * which one only under the node's lock: attach_replica swaps it under
     * that lock, and lock_acquire may release the GIL while it waits. */
    lock_acquire(self->lock);
    PyThread_type_lock replica_lock = self->replica != NULL ? self->replica->lock : NULL;
    if (replica_lock != NULL) {
        lock_acquire(replica_lock);
    }
    Py_BEGIN_ALLOW_THREADS /* persists (and, when durable, fdatasyncs) the batch */
    s = luigi_raft_take_ready(self->raft, &rd);
    if (s == LUIGI_OK && rd != NULL) {
        cs = ready_copy_fill(rd, &copy);
    }
    if (replica_lock != NULL) {
        lock_release(replica_lock);
    }
    lock_release(self->lock);
    Py_END_ALLOW_THREADS
    if (s != LUIGI_OK || rd == NULL) {
        self->ready_out = 0;
        return none_or_raise(st, s);
    }
    if (cs != LUIGI_OK) {
        ready_copy_free(&copy);
        ready_discard(self, rd);
        self->ready_out = 0;
        return cs == READY_COPY_NO_MEMORY ? PyErr_NoMemory() : raise_status(st, cs);
    }
    PyTypeObject *tp = st->ReadyType;
    ReadyObject *r = (ReadyObject *)tp->tp_alloc(tp, 0);
    if (r == NULL) {
        ready_copy_free(&copy);
        ready_discard(self, rd);
        self->ready_out = 0;
        return NULL;
    }
    r->node = (RaftNodeObject *)Py_NewRef(op);
    r->ready = rd; /* from here on, Ready_dealloc releases the batch */
    int rc = ready_build(st, r, &copy);
    ready_copy_free(&copy);
    if (rc < 0) {
        Py_DECREF(r);
        return NULL;
    }
    return (PyObject *)r;
}

static PyObject *
RaftNode_advance(PyObject *op, PyObject *arg)
{
    RaftNodeObject *self = (RaftNodeObject *)op;
    module_state *st = state_of(op);
    if (!Py_IS_TYPE(arg, st->ReadyType)) {
        PyErr_Format(PyExc_TypeError, "expected a Ready, not %.100s", Py_TYPE(arg)->tp_name);
        return NULL;
    }
    ReadyObject *r = (ReadyObject *)arg;
    if (r->node != self) {
        PyErr_SetString(st->LuigiValueError, "this Ready was handed out by another RaftNode");
        return NULL;
    }
    if (r->ready == NULL) {
        PyErr_SetString(st->TransactionStateError, "this Ready was already advanced");
        return NULL;
    }
    lock_acquire(self->lock);
    luigi_status s = luigi_raft_advance(self->raft, r->ready);
    if (s == LUIGI_OK) {
        luigi_raft_ready_free(r->ready);
    }
    lock_release(self->lock);
    if (s != LUIGI_OK) {
        return raise_status(st, s);
    }
    r->ready = NULL;
    self->ready_out = 0;
    Py_RETURN_NONE;
}

static PyObject *
RaftNode_attach_replica(PyObject *op, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"", "log_origin", NULL};
    RaftNodeObject *self = (RaftNodeObject *)op;
    module_state *st = state_of(op);
    PyObject *replica, *origin_obj = NULL;
    uint64_t origin;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!|$O:attach_replica", kwlist, st->ReplicaType,
                                     &replica, &origin_obj)) {
        return NULL;
    }
    if (origin_obj == NULL) {
        PyErr_SetString(PyExc_TypeError, "attach_replica() missing keyword argument 'log_origin'");
        return NULL;
    }
    if (as_u64(st, origin_obj, "log_origin", &origin) < 0) {
        return NULL;
    }
    ReplicaObject *r = (ReplicaObject *)replica;
    luigi_status s;
    ReplicaObject *previous = NULL;
    lock_acquire(self->lock);
    WITH_LOCK(r->lock, s = luigi_raft_attach_replica(self->raft, r->replica, origin));
    if (s == LUIGI_OK) {
        /* Swapped under the node's lock, where ready() reads it. */
        previous = self->replica;
        self->replica = (ReplicaObject *)Py_NewRef(replica);
    }
    lock_release(self->lock);
    Py_XDECREF(previous); /* released only after the lock, as every object is */
    if (s != LUIGI_OK) {
        return raise_status(st, s);
    }
    Py_RETURN_NONE;
}

static PyObject *
RaftNode_propose_transaction(PyObject *op, PyObject *arg)
{
    RaftNodeObject *self = (RaftNodeObject *)op;
    module_state *st = state_of(op);
    if (!Py_IS_TYPE(arg, st->TransactionType)) {
        PyErr_Format(PyExc_TypeError, "expected a Transaction, not %.100s", Py_TYPE(arg)->tp_name);
        return NULL;
    }
    TransactionObject *tx = (TransactionObject *)arg;
    if (txn_check_open(st, tx) < 0) {
        return NULL;
    }
    uint64_t index = 0;
    size_t ops = 0;
    luigi_status s;
    lock_acquire(self->lock);
    lock_acquire(tx->replica->lock);
    s = luigi_txn_op_count(tx->txn, &ops);
    if (s == LUIGI_OK) {
        s = luigi_raft_propose_txn(self->raft, tx->txn, &index);
    }
    if (s == LUIGI_OK) {
        luigi_txn_free(tx->txn); /* proposed: the log carries it from here */
        tx->txn = NULL;
    }
    lock_release(tx->replica->lock);
    lock_release(self->lock);
    if (s != LUIGI_OK) {
        return raise_status(st, s); /* still open */
    }
    tx->state = TXN_PROPOSED;
    tx->proposed_index = index;
    tx->proposed_ops = ops;
    return PyLong_FromUnsignedLongLong(index);
}

static PyObject *
RaftNode_compact_replica(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    RaftNodeObject *self = (RaftNodeObject *)op;
    module_state *st = state_of(op);
    if (self->replica == NULL) {
        PyErr_SetString(st->TransactionStateError,
                        "no replica is attached to this node (attach_replica)");
        return NULL;
    }
    uint64_t index = 0;
    luigi_status s;
    lock_acquire(self->lock);
    lock_acquire(self->replica->lock);
    Py_BEGIN_ALLOW_THREADS /* writes (and, when durable, fsyncs) the snapshot */
    s = luigi_raft_snapshot_state_machine(self->raft, &index);
    lock_release(self->replica->lock);
    lock_release(self->lock);
    Py_END_ALLOW_THREADS
    return u64_or_raise(st, s, index);
}

static PyObject *
RaftNode_transaction_outcome(PyObject *op, PyObject *index_obj)
{
    RaftNodeObject *self = (RaftNodeObject *)op;
    module_state *st = state_of(op);
    uint64_t index;
    if (as_u64(st, index_obj, "index", &index) < 0) {
        return NULL;
    }
    uint32_t outcome = 0;
    luigi_status why = LUIGI_OK;
    luigi_buffer reason = {NULL, 0};
    luigi_status s;
    WITH_LOCK(self->lock, s = luigi_raft_txn_outcome(self->raft, index, &outcome, &why, &reason));
    if (s != LUIGI_OK) {
        return raise_status(st, s);
    }
    if (outcome == LUIGI_TXN_REJECTED) {
        PyObject *text = PyUnicode_DecodeUTF8((const char *)reason.data, (Py_ssize_t)reason.len,
                                              "replace");
        luigi_buffer_free(&reason);
        if (text == NULL) {
            return NULL;
        }
        raise_status_message(st, why, PyUnicode_AsUTF8(text));
        Py_DECREF(text);
        return NULL;
    }
    luigi_buffer_free(&reason);
    static const char *names[] = {"pending", "committed", "rejected", "lost", "unknown"};
    if (outcome >= sizeof names / sizeof names[0]) {
        PyErr_Format(st->LuigiError, "libluigi returned an unknown outcome %u", (unsigned)outcome);
        return NULL;
    }
    return PyUnicode_FromString(names[outcome]);
}

static PyObject *
RaftNode_status(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    RaftNodeObject *self = (RaftNodeObject *)op;
    luigi_raft_status status;
    raft_status_init(&status);
    luigi_status s;
    WITH_LOCK(self->lock, s = luigi_raft_get_status(self->raft, &status));
    return make_raft_status(state_of(op), s, &status);
}

static PyObject *
RaftNode_get_id(PyObject *op, void *Py_UNUSED(closure))
{
    return PyLong_FromUnsignedLongLong(((RaftNodeObject *)op)->id);
}

static PyObject *
RaftNode_repr(PyObject *op)
{
    return PyUnicode_FromFormat("<RaftNode %llu>", (unsigned long long)((RaftNodeObject *)op)->id);
}

static PyMethodDef RaftNode_methods[] = {
    {"tick", RaftNode_tick, METH_NOARGS,
     "tick($self, /)\n--\n\nAdvance the node's logical clock by one tick (elections, heartbeats)."},
    {"step", RaftNode_step, METH_O,
     "step($self, message, /)\n--\n\n"
     "Feed one message from a peer (bytes from another node's Ready.messages).\n"
     "DecodeError for malformed bytes, LuigiValueError for a message that does\n"
     "not fit (wrong recipient); the node is unchanged either way."},
    {"step_many", RaftNode_step_many, METH_O,
     "step_many($self, frames, /)\n--\n\n"
     "Feed many messages in one call: frames is (u32 LE length | message)*, the\n"
     "format drain() produces per peer. A malformed framing raises DecodeError\n"
     "and steps nothing; a message the node refuses (malformed, stale, meant for\n"
     "another node or group) is skipped like a lost packet and counted. Returns\n"
     "the number refused (releases the GIL)."},
    {"drain", RaftNode_drain, METH_NOARGS,
     "drain($self, /)\n--\n\n"
     "Take and advance every Ready batch until none is left, in one call (the\n"
     "batch path of ready()/advance(); releases the GIL). Returns (messages,\n"
     "committed, snapshot, batches): messages maps each peer id to its messages\n"
     "as frames for step_many; committed holds the committed entries as (u64 LE\n"
     "index | u64 LE term | u8 kind | u32 LE length | data)* (an attached replica\n"
     "has applied them already); snapshot is None or the last snapshot a batch\n"
     "carried, (index, term, data): restore it, then apply the committed entries\n"
     "after its index; batches counts the Ready batches. Read states are not\n"
     "reported: use ready() for ReadIndex."},
    {"propose", RaftNode_propose, METH_O,
     "propose($self, data, /)\n--\n\n"
     "Append data to the log (leader only, else TransactionStateError); return its index.\n"
     "It is committed once it comes back in a Ready's committed entries."},
    {"campaign", RaftNode_campaign, METH_NOARGS,
     "campaign($self, /)\n--\n\nStart an election now (pre-vote first when enabled)."},
    {"propose_conf_change", FUNC(RaftNode_propose_conf_change), METH_FASTCALL,
     "propose_conf_change($self, kind, node, /)\n--\n\n"
     "Propose a membership change (leader only, one at a time): kind is 'add_voter',\n"
     "'remove_node' or 'add_learner'. Returns the entry's index; it takes effect\n"
     "when applied."},
    {"transfer_leader", RaftNode_transfer_leader, METH_O,
     "transfer_leader($self, to, /)\n--\n\n"
     "Hand leadership to voter `to` once it caught up (leader only)."},
    {"read_index", RaftNode_read_index, METH_O,
     "read_index($self, context, /)\n--\n\n"
     "Ask for a linearizable read point (leader only). A later Ready carries\n"
     "(index, context) in read_states once a quorum confirmed the leadership:\n"
     "serve the read after applying up to that index."},
    {"compact", FUNC(RaftNode_compact), METH_FASTCALL,
     "compact($self, index, snapshot, /)\n--\n\n"
     "Replace the log up to applied index `index` with your state machine's\n"
     "snapshot (releases the GIL)."},
    {"ready", RaftNode_ready, METH_NOARGS,
     "ready($self, /)\n--\n\n"
     "The next Ready batch, or None when there is nothing to do. The library\n"
     "persisted (and, with durable storage, fdatasynced) what it needs before\n"
     "returning (releases the GIL). Send its messages, restore its snapshot,\n"
     "apply its committed entries, then call advance(ready); ready() refuses\n"
     "(TransactionStateError) while a handed-out Ready is neither advanced nor\n"
     "dropped."},
    {"advance", RaftNode_advance, METH_O,
     "advance($self, ready, /)\n--\n\n"
     "Tell the node a Ready was sent and applied (once per Ready)."},
    {"status", RaftNode_status, METH_NOARGS,
     "status($self, /)\n--\n\nThe node's RaftStatus."},
    {"attach_replica", FUNC(RaftNode_attach_replica), METH_VARARGS | METH_KEYWORDS,
     "attach_replica($self, replica, /, *, log_origin)\n--\n\n"
     "Make this log the coordinated path of replica's transactions: ready()\n"
     "applies each committed transaction to it as the update (log_origin, n),\n"
     "the same on every node. log_origin: non-zero, not the replica's node id,\n"
     "the same on every node of the group. Replaces any attached replica."},
    {"propose_transaction", RaftNode_propose_transaction, METH_O,
     "propose_transaction($self, transaction, /)\n--\n\n"
     "Propose a transaction of the attached replica (sets and algebraic ops);\n"
     "return its log index. Leader only (else TransactionStateError, and the\n"
     "transaction stays open); TypeConflictError when its ops disagree with the\n"
     "replica's key types. The transaction is then finished."},
    {"compact_replica", RaftNode_compact_replica, METH_NOARGS,
     "compact_replica($self, /)\n--\n\n"
     "Replace the log up to the applied index with the attached replica's\n"
     "snapshot (the log's updates); return that index. A node that falls\n"
     "behind it is sent the snapshot (releases the GIL)."},
    {"transaction_outcome", RaftNode_transaction_outcome, METH_O,
     "transaction_outcome($self, index, /)\n--\n\n"
     "What became of the transaction proposed at index through this node:\n"
     "'pending' (not applied here yet), 'committed', 'lost' (a leader change put\n"
     "another entry there: propose again) or 'unknown' (not proposed here, or\n"
     "forgotten). A transaction the log rejected on every node raises the\n"
     "error that rejected it (TypeConflictError, LuigiOverflowError)."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef RaftNode_getset[] = {
    {"id", RaftNode_get_id, NULL, "This node's id.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot RaftNode_slots[] = {
    {Py_tp_doc, "RaftNode(id, voters, *, storage=None, election_tick=10, heartbeat_tick=1, "
                "pre_vote=True, check_quorum=True, seed=0, max_inflight=256, "
                "max_size_per_message=1048576, group=0)\n--\n\n"
                "One Raft node driven by your own transport: tick() it, step() it every\n"
                "message from a peer, propose(), then loop over ready()/advance().\n"
                "storage: None keeps the log in memory; a directory path keeps a durable\n"
                "write-ahead log and snapshots there, and reopening it restores the node\n"
                "(voters is then ignored). Node ids are non-zero."},
    {Py_tp_new, RaftNode_new},
    {Py_tp_dealloc, RaftNode_dealloc},
    {Py_tp_repr, RaftNode_repr},
    {Py_tp_methods, RaftNode_methods},
    {Py_tp_getset, RaftNode_getset},
    {0, NULL},
};

PyType_Spec RaftNode_spec = {
    .name = "luigi_node.RaftNode",
    .basicsize = sizeof(RaftNodeObject),
    .itemsize = 0,
    .flags = LUIGI_TPFLAGS,
    .slots = RaftNode_slots,
};

/* ============================================================ Ready */

static PyObject *
Ready_new(PyTypeObject *type, PyObject *Py_UNUSED(args), PyObject *Py_UNUSED(kwds))
{
    PyErr_Format(PyExc_TypeError, "cannot create '%.100s' instances: use RaftNode.ready()",
                 type->tp_name);
    return NULL;
}

static void
Ready_dealloc(ReadyObject *self)
{
    if (self->ready != NULL) {
        /* Dropped without advance: release the batch; the node may hand out
         * a new one (what this one carried is re-derived or lost, like a
         * lossy network). */
        ready_discard(self->node, self->ready);
        self->ready = NULL;
        self->node->ready_out = 0;
    }
    Py_CLEAR(self->messages);
    Py_CLEAR(self->committed);
    Py_CLEAR(self->read_states);
    Py_CLEAR(self->snapshot);
    Py_CLEAR(self->hard_state);
    Py_CLEAR(self->entries);
    Py_CLEAR(self->must_sync);
    Py_CLEAR(self->node);
    free_instance(self);
}

/* Every Ready field is an immutable object set once: one getter reads the
 * field at the offset given as the closure. */
static PyObject *
Ready_get_field(PyObject *op, void *offset)
{
    return Py_NewRef(*(PyObject **)((char *)op + (size_t)offset));
}

#define READY_FIELD(name) ((void *)offsetof(ReadyObject, name))

static PyObject *
Ready_get_advanced(PyObject *op, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(((ReadyObject *)op)->ready == NULL);
}

static PyObject *
Ready_repr(PyObject *op)
{
    ReadyObject *r = (ReadyObject *)op;
    return PyUnicode_FromFormat("<Ready of RaftNode %llu: %zd messages, %zd committed, "
                                "%zd read states, %s>",
                                (unsigned long long)r->node->id, PyList_GET_SIZE(r->messages),
                                PyList_GET_SIZE(r->committed), PyList_GET_SIZE(r->read_states),
                                r->snapshot == Py_None ? "no snapshot" : "a snapshot");
}

static PyGetSetDef Ready_getset[] = {
    {"messages", Ready_get_field, NULL,
     "Messages to send, as (to, bytes) pairs; the recipient step()s the bytes.",
     READY_FIELD(messages)},
    {"committed", Ready_get_field, NULL,
     "Committed entries (Entry) to apply in order, after the snapshot if any.",
     READY_FIELD(committed)},
    {"read_states", Ready_get_field, NULL,
     "(index, context) for each confirmed read_index() request.", READY_FIELD(read_states)},
    {"snapshot", Ready_get_field, NULL,
     "(index, term, data) of a snapshot to restore the state machine from, or None.",
     READY_FIELD(snapshot)},
    {"hard_state", Ready_get_field, NULL,
     "The HardState (term, vote, commit) the library persisted for this batch, or None.",
     READY_FIELD(hard_state)},
    {"entries", Ready_get_field, NULL,
     "The log entries (Entry) the library appended for this batch (already persisted).",
     READY_FIELD(entries)},
    {"must_sync", Ready_get_field, NULL,
     "True when the batch carried entries, a snapshot or a new term or vote: a durable\n"
     "node fdatasynced before ready() returned (a commit-only change is not synced).",
     READY_FIELD(must_sync)},
    {"advanced", Ready_get_advanced, NULL, "True once passed to RaftNode.advance().", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot Ready_slots[] = {
    {Py_tp_doc, "One batch of work from RaftNode.ready(), immutable.\n\n"
                "Persisted: the library already wrote (and, with durable storage,\n"
                "fdatasynced) the entries, hard state and snapshot this batch depends on\n"
                "before handing it out, so its messages may be sent right away.\n"
                "Then apply `snapshot` (if any) and `committed` to the state machine and\n"
                "call RaftNode.advance(ready)."},
    {Py_tp_new, Ready_new},
    {Py_tp_dealloc, Ready_dealloc},
    {Py_tp_repr, Ready_repr},
    {Py_tp_getset, Ready_getset},
    {0, NULL},
};

PyType_Spec Ready_spec = {
    .name = "luigi_node.Ready",
    .basicsize = sizeof(ReadyObject),
    .itemsize = 0,
    .flags = LUIGI_TPFLAGS,
    .slots = Ready_slots,
};
