/* _luigi_module.c — the module luigi_node._luigi: its state's lifecycle, the
 * types' creation (the PyType_Specs come from the other files), PyInit. */

#include "_luigi.h"

/* ============================================================ module */

static int
add_type(PyObject *module, PyType_Spec *spec, PyTypeObject **slot)
{
    PyObject *type = PyType_FromModuleAndSpec(module, spec, NULL);
    if (type == NULL) {
        return -1;
    }
    *slot = (PyTypeObject *)type;
    return PyModule_AddType(module, (PyTypeObject *)type);
}

static int
import_attr(PyObject *from, const char *name, PyObject **slot)
{
    *slot = PyObject_GetAttrString(from, name);
    return *slot == NULL ? -1 : 0;
}

static int
luigi_exec(PyObject *module)
{
    module_state *st = (module_state *)PyModule_GetState(module);

    if (luigi_abi_version() != LUIGI_ABI_VERSION) {
        PyErr_Format(PyExc_ImportError,
                     "libluigi ABI version %u does not match the %d this extension was built for",
                     (unsigned)luigi_abi_version(), LUIGI_ABI_VERSION);
        return -1;
    }

    PyObject *errors = PyImport_ImportModule("luigi_node._errors");
    if (errors == NULL) {
        return -1;
    }
    int rc = import_attr(errors, "LuigiError", &st->LuigiError) |
             import_attr(errors, "LuigiValueError", &st->LuigiValueError) |
             import_attr(errors, "InvalidHandleError", &st->InvalidHandleError) |
             import_attr(errors, "DecodeError", &st->DecodeError) |
             import_attr(errors, "NotAlgebraicError", &st->NotAlgebraicError) |
             import_attr(errors, "TypeConflictError", &st->TypeConflictError) |
             import_attr(errors, "LuigiOverflowError", &st->LuigiOverflowError) |
             import_attr(errors, "TransactionStateError", &st->TransactionStateError) |
             import_attr(errors, "NotConvergedError", &st->NotConvergedError) |
             import_attr(errors, "LuigiIndexError", &st->LuigiIndexError) |
             import_attr(errors, "LuigiIOError", &st->LuigiIOError) |
             import_attr(errors, "LuigiTimeoutError", &st->LuigiTimeoutError) |
             import_attr(errors, "ConflictError", &st->ConflictError) |
             import_attr(errors, "AuthError", &st->AuthError) |
             import_attr(errors, "NotLinearizableError", &st->NotLinearizableError) |
             import_attr(errors, "InvariantViolation", &st->InvariantViolation);
    Py_DECREF(errors);
    if (rc != 0) {
        return -1;
    }

    PyObject *raft_types = PyImport_ImportModule("luigi_node._raft");
    if (raft_types == NULL) {
        return -1;
    }
    rc = import_attr(raft_types, "Entry", &st->EntryType) |
         import_attr(raft_types, "RaftStatus", &st->RaftStatusType) |
         import_attr(raft_types, "decode_history", &st->decode_history) |
         import_attr(raft_types, "HardState", &st->HardStateType);
    Py_DECREF(raft_types);
    if (rc != 0) {
        return -1;
    }
    PyObject *watermark_types = PyImport_ImportModule("luigi_node._watermark");
    if (watermark_types == NULL) {
        return -1;
    }
    rc = import_attr(watermark_types, "TxnId", &st->TxnIdType) |
         import_attr(watermark_types, "TxnResult", &st->TxnResultType);
    Py_DECREF(watermark_types);
    if (rc != 0) {
        return -1;
    }
    PyObject *table_types = PyImport_ImportModule("luigi_node._tablelog");
    if (table_types == NULL) {
        return -1;
    }
    rc = import_attr(table_types, "DataFile", &st->DataFileType) |
         import_attr(table_types, "TableVersion", &st->TableVersionType) |
         import_attr(table_types, "CommitRequest", &st->CommitRequestType);
    Py_DECREF(table_types);
    if (rc != 0) {
        return -1;
    }
    PyObject *json = PyImport_ImportModule("json");
    if (json == NULL) {
        return -1;
    }
    rc = import_attr(json, "loads", &st->json_loads);
    Py_DECREF(json);
    if (rc != 0) {
        return -1;
    }
    static const char *const roles[4] = {"follower", "pre_candidate", "candidate", "leader"};
    static const char *const kinds[2] = {"normal", "conf_change"};
    for (int i = 0; i < 4; i++) {
        if ((st->role_names[i] = PyUnicode_InternFromString(roles[i])) == NULL) {
            return -1;
        }
    }
    for (int i = 0; i < 2; i++) {
        if ((st->entry_kinds[i] = PyUnicode_InternFromString(kinds[i])) == NULL) {
            return -1;
        }
    }

    /* luigi_node defines CausalOrder before it imports this extension. */
    PyObject *package = PyImport_ImportModule("luigi_node");
    if (package == NULL) {
        return -1;
    }
    rc = import_attr(package, "CausalOrder", &st->CausalOrder);
    Py_DECREF(package);
    if (rc != 0) {
        return -1;
    }

    if (add_type(module, &VectorClock_spec, &st->VectorClockType) < 0 ||
        add_type(module, &Update_spec, &st->UpdateType) < 0 ||
        add_type(module, &Replica_spec, &st->ReplicaType) < 0 ||
        add_type(module, &Transaction_spec, &st->TransactionType) < 0 ||
        add_type(module, &Cluster_spec, &st->ClusterType) < 0 ||
        add_type(module, &RaftNode_spec, &st->RaftNodeType) < 0 ||
        add_type(module, &Ready_spec, &st->ReadyType) < 0 ||
        add_type(module, &RaftCluster_spec, &st->RaftClusterType) < 0 ||
        add_type(module, &ShardedCluster_spec, &st->ShardedClusterType) < 0 ||
        add_type(module, &WmCoordinator_spec, &st->WmCoordinatorType) < 0 ||
        add_type(module, &WmShard_spec, &st->WmShardType) < 0 ||
        add_type(module, &TableLog_spec, &st->TableLogType) < 0 ||
        add_type(module, &Client_spec, &st->ClientType) < 0) {
        return -1;
    }
    if (PyModule_AddStringConstant(module, "LIBRARY_VERSION", luigi_version_string()) < 0 ||
        PyModule_AddIntConstant(module, "ABI_VERSION", (long)luigi_abi_version()) < 0 ||
        /* Replica groups of a luigi-node are REPLICA_GROUP_BASE + 1, ... (Client). */
        PyModule_AddIntConstant(module, "REPLICA_GROUP_BASE", (long)LUIGI_REPLICA_GROUP_BASE) < 0) {
        return -1;
    }
    return 0;
}

static int
luigi_traverse(PyObject *module, visitproc visit, void *arg)
{
    module_state *st = (module_state *)PyModule_GetState(module);
    if (st == NULL) {
        return 0;
    }
    Py_VISIT(st->VectorClockType);
    Py_VISIT(st->UpdateType);
    Py_VISIT(st->ReplicaType);
    Py_VISIT(st->TransactionType);
    Py_VISIT(st->ClusterType);
    Py_VISIT(st->RaftNodeType);
    Py_VISIT(st->ReadyType);
    Py_VISIT(st->RaftClusterType);
    Py_VISIT(st->ShardedClusterType);
    Py_VISIT(st->WmCoordinatorType);
    Py_VISIT(st->WmShardType);
    Py_VISIT(st->TableLogType);
    Py_VISIT(st->ClientType);
    Py_VISIT(st->LuigiError);
    Py_VISIT(st->LuigiValueError);
    Py_VISIT(st->InvalidHandleError);
    Py_VISIT(st->DecodeError);
    Py_VISIT(st->NotAlgebraicError);
    Py_VISIT(st->TypeConflictError);
    Py_VISIT(st->LuigiOverflowError);
    Py_VISIT(st->TransactionStateError);
    Py_VISIT(st->NotConvergedError);
    Py_VISIT(st->LuigiIndexError);
    Py_VISIT(st->CausalOrder);
    Py_VISIT(st->LuigiIOError);
    Py_VISIT(st->LuigiTimeoutError);
    Py_VISIT(st->ConflictError);
    Py_VISIT(st->AuthError);
    Py_VISIT(st->NotLinearizableError);
    Py_VISIT(st->InvariantViolation);
    Py_VISIT(st->EntryType);
    Py_VISIT(st->RaftStatusType);
    Py_VISIT(st->decode_history);
    Py_VISIT(st->HardStateType);
    Py_VISIT(st->TxnIdType);
    Py_VISIT(st->TxnResultType);
    Py_VISIT(st->DataFileType);
    Py_VISIT(st->TableVersionType);
    Py_VISIT(st->CommitRequestType);
    Py_VISIT(st->json_loads);
    for (int i = 0; i < 4; i++) {
        Py_VISIT(st->role_names[i]);
    }
    for (int i = 0; i < 2; i++) {
        Py_VISIT(st->entry_kinds[i]);
    }
    return 0;
}

static int
luigi_clear(PyObject *module)
{
    module_state *st = (module_state *)PyModule_GetState(module);
    if (st == NULL) {
        return 0;
    }
    Py_CLEAR(st->VectorClockType);
    Py_CLEAR(st->UpdateType);
    Py_CLEAR(st->ReplicaType);
    Py_CLEAR(st->TransactionType);
    Py_CLEAR(st->ClusterType);
    Py_CLEAR(st->RaftNodeType);
    Py_CLEAR(st->ReadyType);
    Py_CLEAR(st->RaftClusterType);
    Py_CLEAR(st->ShardedClusterType);
    Py_CLEAR(st->WmCoordinatorType);
    Py_CLEAR(st->WmShardType);
    Py_CLEAR(st->TableLogType);
    Py_CLEAR(st->ClientType);
    Py_CLEAR(st->LuigiError);
    Py_CLEAR(st->LuigiValueError);
    Py_CLEAR(st->InvalidHandleError);
    Py_CLEAR(st->DecodeError);
    Py_CLEAR(st->NotAlgebraicError);
    Py_CLEAR(st->TypeConflictError);
    Py_CLEAR(st->LuigiOverflowError);
    Py_CLEAR(st->TransactionStateError);
    Py_CLEAR(st->NotConvergedError);
    Py_CLEAR(st->LuigiIndexError);
    Py_CLEAR(st->CausalOrder);
    Py_CLEAR(st->LuigiIOError);
    Py_CLEAR(st->LuigiTimeoutError);
    Py_CLEAR(st->ConflictError);
    Py_CLEAR(st->AuthError);
    Py_CLEAR(st->NotLinearizableError);
    Py_CLEAR(st->InvariantViolation);
    Py_CLEAR(st->EntryType);
    Py_CLEAR(st->RaftStatusType);
    Py_CLEAR(st->decode_history);
    Py_CLEAR(st->HardStateType);
    Py_CLEAR(st->TxnIdType);
    Py_CLEAR(st->TxnResultType);
    Py_CLEAR(st->DataFileType);
    Py_CLEAR(st->TableVersionType);
    Py_CLEAR(st->CommitRequestType);
    Py_CLEAR(st->json_loads);
    for (int i = 0; i < 4; i++) {
        Py_CLEAR(st->role_names[i]);
    }
    for (int i = 0; i < 2; i++) {
        Py_CLEAR(st->entry_kinds[i]);
    }
    return 0;
}

static void
luigi_free(void *module)
{
    (void)luigi_clear((PyObject *)module);
}

static PyModuleDef_Slot luigi_slots[] = {
    {Py_mod_exec, luigi_exec},
    {0, NULL},
};

static struct PyModuleDef luigi_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "luigi_node._luigi",
    .m_doc = "CPython extension over libluigi's C ABI (luigi.h). Use luigi_node instead.",
    .m_size = sizeof(module_state),
    .m_methods = NULL,
    .m_slots = luigi_slots,
    .m_traverse = luigi_traverse,
    .m_clear = luigi_clear,
    .m_free = luigi_free,
};

PyMODINIT_FUNC
PyInit__luigi(void)
{
    return PyModuleDef_Init(&luigi_module);
}
