/* _luigi_cluster.c — luigi_node.SimulatedCluster. */

#include "_luigi.h"

/* ============================================================ SimulatedCluster */

static PyObject *
Cluster_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"nodes", "seed", "fanout", "drop", "duplicate",
                             "reorder", "max_delay", NULL};
    module_state *st = state_of_type(type);
    PyObject *nodes_obj, *seed_obj = NULL, *fanout_obj = NULL, *max_delay_obj = NULL;
    luigi_cluster_options options;
    luigi_cluster_options_init(&options);
    double drop = 0.0, duplicate = 0.0, reorder = 0.0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|O$OdddO:SimulatedCluster", kwlist,
                                     &nodes_obj, &seed_obj, &fanout_obj, &drop, &duplicate,
                                     &reorder, &max_delay_obj)) {
        return NULL;
    }
    options.version = LUIGI_CLUSTER_OPTIONS_VERSION;
    options.seed = 0;
    options.fanout = 1;
    options.max_delay = 0;
    if (as_u32(st, nodes_obj, "nodes", &options.nodes) < 0 ||
        opt_u64(st, seed_obj, "seed", &options.seed) < 0 ||
        opt_u32(st, fanout_obj, "fanout", &options.fanout) < 0 ||
        opt_u32(st, max_delay_obj, "max_delay", &options.max_delay) < 0) {
        return NULL;
    }
    options.drop_rate = drop;
    options.duplicate_rate = duplicate;
    options.reorder_rate = reorder;

    /* Object and lock first: on any later failure tp_dealloc frees what exists. */
    ClusterObject *self = (ClusterObject *)type->tp_alloc(type, 0);
    if (self == NULL || new_lock(&self->lock) < 0) {
        Py_XDECREF(self);
        return NULL;
    }
    luigi_status s = luigi_cluster_new(&options, &self->cluster);
    if (s == LUIGI_OK) {
        s = luigi_cluster_size(self->cluster, &self->size);
    }
    if (s != LUIGI_OK) {
        return raise_and_drop(st, s, self);
    }
    return (PyObject *)self;
}

static void
Cluster_dealloc(ClusterObject *self)
{
    /* Replicas keep us alive, so none of them can be in use now. */
    luigi_cluster_free(self->cluster);
    self->cluster = NULL;
    free_lock(&self->lock);
    free_instance(self);
}

static Py_ssize_t
Cluster_length(PyObject *op)
{
    return (Py_ssize_t)((ClusterObject *)op)->size;
}

static PyObject *
cluster_replica(module_state *st, ClusterObject *self, size_t index)
{
    luigi_replica *replica = NULL;
    luigi_status s;
    WITH_LOCK(self->lock, s = luigi_cluster_replica(self->cluster, index, &replica));
    return wrap_replica(st, s, replica, (PyObject *)self);
}

static PyObject *
Cluster_subscript(PyObject *op, PyObject *key)
{
    ClusterObject *self = (ClusterObject *)op;
    module_state *st = state_of(op);
    if (!PyLong_Check(key) && !PyIndex_Check(key)) {
        PyErr_Format(PyExc_TypeError, "cluster indices must be int, not %.100s",
                     Py_TYPE(key)->tp_name);
        return NULL;
    }
    Py_ssize_t i = PyNumber_AsSsize_t(key, NULL); /* clamps, never raises for ints */
    if (i == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (i < 0 || (size_t)i >= self->size) {
        PyErr_Format(st->LuigiIndexError, "node %R is not in [0, %zu)", key, self->size);
        return NULL;
    }
    return cluster_replica(st, self, (size_t)i);
}

static PyObject *
Cluster_iter(PyObject *op)
{
    ClusterObject *self = (ClusterObject *)op;
    module_state *st = state_of(op);
    PyObject *list = PyList_New((Py_ssize_t)self->size);
    if (list == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < self->size; i++) {
        PyObject *r = cluster_replica(st, self, i);
        if (r == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, r);
    }
    PyObject *it = PyObject_GetIter(list);
    Py_DECREF(list);
    return it;
}

static PyObject *
Cluster_partition(PyObject *op, PyObject *groups)
{
    ClusterObject *self = (ClusterObject *)op;
    module_state *st = state_of(op);
    Py_ssize_t ngroups = PyTuple_GET_SIZE(groups);
    size_t n = self->size;
    uint32_t *group_of = PyMem_Calloc(n > 0 ? n : 1, sizeof(uint32_t));
    if (group_of == NULL) {
        return PyErr_NoMemory();
    }
    if ((uint64_t)ngroups >= UINT32_MAX) {
        PyErr_SetString(st->LuigiValueError, "too many groups");
        goto fail;
    }
    /* Nodes not named form one more group, numbered ngroups. */
    for (size_t i = 0; i < n; i++) {
        group_of[i] = (uint32_t)ngroups;
    }
    for (Py_ssize_t g = 0; g < ngroups; g++) {
        PyObject *it = PyObject_GetIter(PyTuple_GET_ITEM(groups, g));
        if (it == NULL) {
            goto fail;
        }
        PyObject *item;
        while ((item = PyIter_Next(it)) != NULL) {
            uint64_t node;
            int rc = as_u64(st, item, "node", &node);
            if (rc == 0 && node >= n) {
                PyErr_Format(st->LuigiIndexError, "node %R is not in [0, %zu)", item, n);
                rc = -1;
            }
            if (rc == 0 && group_of[node] != (uint32_t)ngroups) {
                PyErr_Format(st->LuigiValueError, "node %R is named in two groups", item);
                rc = -1;
            }
            Py_DECREF(item);
            if (rc < 0) {
                Py_DECREF(it);
                goto fail;
            }
            group_of[node] = (uint32_t)g;
        }
        Py_DECREF(it);
        if (PyErr_Occurred()) {
            goto fail;
        }
    }
    luigi_status s;
    WITH_LOCK(self->lock, s = luigi_cluster_partition(self->cluster, group_of, n));
    PyMem_Free(group_of);
    return none_or_raise(st, s);
fail:
    PyMem_Free(group_of);
    return NULL;
}

static PyObject *
Cluster_heal(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    ClusterObject *self = (ClusterObject *)op;
    luigi_status s;
    WITH_LOCK(self->lock, s = luigi_cluster_heal(self->cluster));
    return none_or_raise(state_of(op), s);
}

static PyObject *
Cluster_set_faults(PyObject *op, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"drop", "duplicate", "reorder", "max_delay", NULL};
    ClusterObject *self = (ClusterObject *)op;
    module_state *st = state_of(op);
    double drop = 0.0, duplicate = 0.0, reorder = 0.0;
    PyObject *max_delay_obj = NULL;
    uint32_t max_delay = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|$dddO:set_faults", kwlist, &drop, &duplicate,
                                     &reorder, &max_delay_obj)) {
        return NULL;
    }
    if (opt_u32(st, max_delay_obj, "max_delay", &max_delay) < 0) {
        return NULL;
    }
    luigi_status s;
    WITH_LOCK(self->lock,
        s = luigi_cluster_set_faults(self->cluster, drop, duplicate, reorder, max_delay));
    return none_or_raise(st, s);
}

static PyObject *
Cluster_run(PyObject *op, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"rounds", NULL};
    ClusterObject *self = (ClusterObject *)op;
    module_state *st = state_of(op);
    PyObject *rounds_obj = NULL;
    uint64_t rounds = 1;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O:run", kwlist, &rounds_obj)) {
        return NULL;
    }
    if (opt_u64(st, rounds_obj, "rounds", &rounds) < 0) {
        return NULL;
    }
    luigi_status s;
    WITH_LOCK_NOGIL(self->lock, s = luigi_cluster_run(self->cluster, rounds));
    return none_or_raise(st, s);
}

static PyObject *
Cluster_run_until_converged(PyObject *op, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"max_rounds", NULL};
    ClusterObject *self = (ClusterObject *)op;
    module_state *st = state_of(op);
    PyObject *max_obj = NULL;
    uint64_t max_rounds = 1000, ran = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O:run_until_converged", kwlist, &max_obj)) {
        return NULL;
    }
    if (opt_u64(st, max_obj, "max_rounds", &max_rounds) < 0) {
        return NULL;
    }
    luigi_status s;
    WITH_LOCK_NOGIL(self->lock,
        s = luigi_cluster_run_until_converged(self->cluster, max_rounds, &ran));
    return u64_or_raise(st, s, ran);
}

static PyObject *
Cluster_converged(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    ClusterObject *self = (ClusterObject *)op;
    int converged = 0;
    luigi_status s;
    WITH_LOCK(self->lock, s = luigi_cluster_converged(self->cluster, &converged));
    return bool_or_raise(state_of(op), s, converged);
}

static PyObject *
Cluster_stats(PyObject *op, PyObject *Py_UNUSED(ignored))
{
    ClusterObject *self = (ClusterObject *)op;
    luigi_cluster_stats stats;
    memset(&stats, 0, sizeof stats);
    stats.version = LUIGI_CLUSTER_STATS_VERSION;
    luigi_status s;
    WITH_LOCK(self->lock, s = luigi_cluster_get_stats(self->cluster, &stats));
    if (s != LUIGI_OK) {
        return raise_status(state_of(op), s);
    }
    return Py_BuildValue("{sKsKsKsKsKsKsK}",
                         "rounds", (unsigned long long)stats.rounds,
                         "messages", (unsigned long long)stats.messages,
                         "bytes", (unsigned long long)stats.bytes,
                         "dropped", (unsigned long long)stats.dropped,
                         "duplicated", (unsigned long long)stats.duplicated,
                         "updates_shipped", (unsigned long long)stats.updates_shipped,
                         "type_conflicts", (unsigned long long)stats.type_conflicts);
}

static PyObject *
Cluster_repr(PyObject *op)
{
    return PyUnicode_FromFormat("<SimulatedCluster of %zu nodes>", ((ClusterObject *)op)->size);
}

static PyMethodDef Cluster_methods[] = {
    {"partition", Cluster_partition, METH_VARARGS,
     "partition($self, /, *groups)\n--\n\n"
     "Split the network: each argument is an iterable of node ids forming a group;\n"
     "nodes not named form one more group. Messages between groups are lost."},
    {"heal", Cluster_heal, METH_NOARGS, "heal($self, /)\n--\n\nRemove every partition."},
    {"set_faults", FUNC(Cluster_set_faults), METH_VARARGS | METH_KEYWORDS,
     "set_faults($self, /, *, drop=0.0, duplicate=0.0, reorder=0.0, max_delay=0)\n--\n\n"
     "Change the network's fault settings."},
    {"run", FUNC(Cluster_run), METH_VARARGS | METH_KEYWORDS,
     "run($self, /, rounds=1)\n--\n\nRun rounds of anti-entropy (releases the GIL)."},
    {"run_until_converged", FUNC(Cluster_run_until_converged), METH_VARARGS | METH_KEYWORDS,
     "run_until_converged($self, /, max_rounds=1000)\n--\n\n"
     "Run until every replica converged; return the rounds run.\n"
     "NotConvergedError when max_rounds were not enough."},
    {"converged", Cluster_converged, METH_NOARGS,
     "converged($self, /)\n--\n\n"
     "True when every replica applied the same updates and none is pending."},
    {"stats", Cluster_stats, METH_NOARGS,
     "stats($self, /)\n--\n\n"
     "Counters: rounds, messages, bytes, dropped, duplicated, updates_shipped,\n"
     "type_conflicts."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot Cluster_slots[] = {
    {Py_tp_doc, "SimulatedCluster(nodes, seed=0, *, fanout=1, drop=0.0, duplicate=0.0, "
                "reorder=0.0, max_delay=0)\n--\n\n"
                "Replicas 0..nodes-1 on virtual time, exchanging version vectors and\n"
                "shipping missing updates over a seeded, faulty network."},
    {Py_tp_new, Cluster_new},
    {Py_tp_dealloc, Cluster_dealloc},
    {Py_tp_repr, Cluster_repr},
    {Py_tp_iter, Cluster_iter},
    {Py_tp_methods, Cluster_methods},
    {Py_mp_subscript, Cluster_subscript},
    {Py_mp_length, Cluster_length},
    {0, NULL},
};

PyType_Spec Cluster_spec = {
    .name = "luigi_node.SimulatedCluster",
    .basicsize = sizeof(ClusterObject),
    .itemsize = 0,
    .flags = LUIGI_TPFLAGS,
    .slots = Cluster_slots,
};
