/*
 * headroom_dcgm.h: the part of NVIDIA DCGM's C API that Headroom uses, declared from NVIDIA's
 * public DCGM API documentation (DCGM 3.x and 4.x: dcgm_agent.h, dcgm_structs.h,
 * dcgm_fields.h). bindgen reads this file when DCGM_HOME does not point at an installed DCGM;
 * with DCGM_HOME set, the real headers are bound instead and must agree with it.
 *
 * Only what Headroom calls is here: start or connect to a host engine, discover GPUs and the
 * MIG hierarchy, build one entity group and one field group, watch them, read the latest
 * values. Struct layouts and constants are DCGM's ABI: change nothing without checking the
 * real headers.
 */
#ifndef HEADROOM_DCGM_H
#define HEADROOM_DCGM_H

#include <stdint.h>

/* Opaque identifiers handed out by the host engine. */
typedef uintptr_t dcgmHandle_t;
typedef uintptr_t dcgmGpuGrp_t;
typedef uintptr_t dcgmFieldGrp_t;

/* Entity ids are per entity group (GPU ids, GPU-instance ids, ...). */
typedef unsigned int dcgm_field_eid_t;

typedef enum dcgm_field_entity_group_t {
    DCGM_FE_NONE = 0,
    DCGM_FE_GPU = 1,
    DCGM_FE_VGPU = 2,
    DCGM_FE_SWITCH = 3,
    DCGM_FE_GPU_I = 4,
    DCGM_FE_GPU_CI = 5
} dcgm_field_entity_group_t;

/* Status codes (the ones Headroom names; the library may return others). */
typedef enum dcgmReturn_enum {
    DCGM_ST_OK = 0,
    DCGM_ST_BADPARAM = -1,
    DCGM_ST_GENERIC_ERROR = -3,
    DCGM_ST_MEMORY = -4,
    DCGM_ST_NOT_CONFIGURED = -5,
    DCGM_ST_NOT_SUPPORTED = -6,
    DCGM_ST_INIT_ERROR = -7,
    DCGM_ST_NVML_ERROR = -8,
    DCGM_ST_UNINITIALIZED = -10,
    DCGM_ST_TIMEOUT = -11,
    DCGM_ST_VER_MISMATCH = -12,
    DCGM_ST_UNKNOWN_FIELD = -13,
    DCGM_ST_NO_DATA = -14,
    DCGM_ST_STALE_DATA = -15,
    DCGM_ST_NOT_WATCHED = -16,
    DCGM_ST_NO_PERMISSION = -17,
    DCGM_ST_GPU_IS_LOST = -18,
    DCGM_ST_FUNCTION_NOT_FOUND = -20,
    DCGM_ST_CONNECTION_NOT_VALID = -21,
    DCGM_ST_GPU_NOT_SUPPORTED = -22,
    DCGM_ST_MAX_LIMIT = -24,
    DCGM_ST_REQUIRES_ROOT = -29,
    DCGM_ST_INSUFFICIENT_SIZE = -31,
    DCGM_ST_MODULE_NOT_LOADED = -33,
    DCGM_ST_GROUP_IS_EMPTY = -35,
    DCGM_ST_PROFILING_NOT_SUPPORTED = -36,
    DCGM_ST_PROFILING_LIBRARY_ERROR = -37,
    DCGM_ST_PROFILING_MULTI_PASS = -38,
    DCGM_ST_INSTANCE_NOT_FOUND = -45,
    DCGM_ST_NVML_NOT_LOADED = -56
} dcgmReturn_t;

typedef enum dcgmOperationMode_enum {
    DCGM_OPERATION_MODE_AUTO = 1,
    DCGM_OPERATION_MODE_MANUAL = 2
} dcgmOperationMode_t;

typedef enum dcgmGroupType_enum {
    DCGM_GROUP_DEFAULT = 0,
    DCGM_GROUP_EMPTY = 1
} dcgmGroupType_t;

#define DCGM_MAX_NUM_DEVICES 32
#define DCGM_MAX_STR_LENGTH 256
#define DCGM_MAX_BLOB_LENGTH 4096
/* 7 GPU instances + 7 compute instances per GPU at most. */
#define DCGM_MAX_TOTAL_INSTANCES_PER_GPU 14
#define DCGM_MAX_HIERARCHY_INFO (DCGM_MAX_NUM_DEVICES * DCGM_MAX_TOTAL_INSTANCES_PER_GPU)

/* Field types (dcgmFieldValue_v2.fieldType). */
#define DCGM_FT_DOUBLE 'd'
#define DCGM_FT_INT64 'i'
#define DCGM_FT_STRING 's'

/* Values at or above these mean "blank": not found, not supported, no permission, ... */
#define DCGM_INT64_BLANK 0x7ffffffffffffff0
#define DCGM_FP64_BLANK 140737488355328.0

/* dcgmEntitiesGetLatestValues flags. */
#define DCGM_FV_FLAG_LIVE_DATA 0x00000001

/* The fields Headroom reads (ids are stable across DCGM releases). */
#define DCGM_FI_DEV_UUID 54
#define DCGM_FI_DEV_FB_TOTAL 250
#define DCGM_FI_DEV_FB_FREE 251
#define DCGM_FI_DEV_FB_USED 252
#define DCGM_FI_PROF_GR_ENGINE_ACTIVE 1001
#define DCGM_FI_PROF_SM_ACTIVE 1002
#define DCGM_FI_PROF_PIPE_TENSOR_ACTIVE 1004
#define DCGM_FI_PROF_DRAM_ACTIVE 1005

/* Options of dcgmConnect_v2 (version 2 of the struct). */
typedef struct {
    unsigned int version;
    unsigned int persistAfterDisconnect;
    unsigned int timeoutMs;
    unsigned int addressIsUnixSocket;
} dcgmConnectV2Params_v2;
typedef dcgmConnectV2Params_v2 dcgmConnectV2Params_t;

typedef struct {
    dcgm_field_entity_group_t entityGroupId;
    dcgm_field_eid_t entityId;
} dcgmGroupEntityPair_t;

/* Where a MIG entity sits, in NVML's terms. */
typedef struct {
    char gpuUuid[128];
    unsigned int nvmlGpuIndex;
    unsigned int nvmlInstanceId;
    unsigned int nvmlComputeInstanceId;
    unsigned int nvmlMigProfileId;
    unsigned int nvmlProfileSlices;
} dcgmMigEntityInfo_t;

typedef struct {
    dcgmGroupEntityPair_t entity;
    dcgmGroupEntityPair_t parent;
    dcgmMigEntityInfo_t info;
} dcgmMigHierarchyInfo_v2;

typedef struct {
    unsigned int version;
    unsigned int count;
    dcgmMigHierarchyInfo_v2 entityList[DCGM_MAX_HIERARCHY_INFO];
} dcgmMigHierarchy_v2;

/* One field value of one entity (version 2 of the struct). */
typedef struct {
    unsigned int version;
    dcgm_field_entity_group_t entityGroupId;
    dcgm_field_eid_t entityId;
    unsigned short fieldId;
    unsigned short fieldType;
    int status;
    unsigned int unused;
    int64_t ts;
    union {
        int64_t i64;
        double dbl;
        char str[DCGM_MAX_STR_LENGTH];
        char blob[DCGM_MAX_BLOB_LENGTH];
    } value;
} dcgmFieldValue_v2;

dcgmReturn_t dcgmInit(void);
dcgmReturn_t dcgmShutdown(void);
dcgmReturn_t dcgmStartEmbedded(dcgmOperationMode_t opMode, dcgmHandle_t *pDcgmHandle);
dcgmReturn_t dcgmStopEmbedded(dcgmHandle_t pDcgmHandle);
dcgmReturn_t dcgmConnect_v2(const char *ipAddress, dcgmConnectV2Params_t *connectParams,
                            dcgmHandle_t *pDcgmHandle);
dcgmReturn_t dcgmDisconnect(dcgmHandle_t pDcgmHandle);
const char *errorString(dcgmReturn_t result);
dcgmReturn_t dcgmGetAllSupportedDevices(dcgmHandle_t pDcgmHandle,
                                        unsigned int gpuIdList[DCGM_MAX_NUM_DEVICES], int *count);
dcgmReturn_t dcgmGetGpuInstanceHierarchy(dcgmHandle_t dcgmHandle, dcgmMigHierarchy_v2 *hierarchy);
dcgmReturn_t dcgmGroupCreate(dcgmHandle_t pDcgmHandle, dcgmGroupType_t type, const char *groupName,
                             dcgmGpuGrp_t *pDcgmGrpId);
dcgmReturn_t dcgmGroupAddEntity(dcgmHandle_t pDcgmHandle, dcgmGpuGrp_t groupId,
                                dcgm_field_entity_group_t entityGroupId, dcgm_field_eid_t entityId);
dcgmReturn_t dcgmGroupDestroy(dcgmHandle_t pDcgmHandle, dcgmGpuGrp_t groupId);
dcgmReturn_t dcgmFieldGroupCreate(dcgmHandle_t dcgmHandle, int numFieldIds,
                                  const unsigned short *fieldIds, const char *fieldGroupName,
                                  dcgmFieldGrp_t *dcgmFieldGroupId);
dcgmReturn_t dcgmFieldGroupDestroy(dcgmHandle_t dcgmHandle, dcgmFieldGrp_t dcgmFieldGroupId);
dcgmReturn_t dcgmWatchFields(dcgmHandle_t pDcgmHandle, dcgmGpuGrp_t groupId,
                             dcgmFieldGrp_t fieldGroupId, long long updateFreq, double maxKeepAge,
                             int maxKeepSamples);
dcgmReturn_t dcgmUnwatchFields(dcgmHandle_t pDcgmHandle, dcgmGpuGrp_t groupId,
                               dcgmFieldGrp_t fieldGroupId);
dcgmReturn_t dcgmUpdateAllFields(dcgmHandle_t pDcgmHandle, int waitForUpdate);
dcgmReturn_t dcgmEntitiesGetLatestValues(dcgmHandle_t pDcgmHandle, dcgmGroupEntityPair_t entities[],
                                         unsigned int entityCount, unsigned short fields[],
                                         unsigned int fieldCount, unsigned int flags,
                                         dcgmFieldValue_v2 values[]);

#endif /* HEADROOM_DCGM_H */
