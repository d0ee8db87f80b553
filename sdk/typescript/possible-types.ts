
      export interface PossibleTypesResultData {
        possibleTypes: {
          [key: string]: string[]
        }
      }
      const result: PossibleTypesResultData = {
  "possibleTypes": {
    "AcceptBoardInvitationResult": [
      "BoardSuccess",
      "NotFound"
    ],
    "AddBoardMemberResult": [
      "BoardSuccess",
      "Forbidden",
      "InvalidInput",
      "NotFound",
      "QuotaExceeded",
      "RateLimited"
    ],
    "AuthResult": [
      "AccountSuspended",
      "AuthPayload",
      "EmailTaken",
      "InvalidCredentials",
      "InvalidInput",
      "RateLimited"
    ],
    "CancelGenerationResult": [
      "CancelSuccess",
      "Forbidden",
      "InvalidState",
      "NotFound"
    ],
    "ChangePasswordResult": [
      "ChangePasswordSuccess",
      "InvalidCredentials",
      "InvalidInput",
      "RateLimited"
    ],
    "ChunkDownloadUrlResult": [
      "DownloadUrl",
      "NotFound"
    ],
    "CompleteChunkUploadResult": [
      "CompleteChunkUploadSuccess",
      "InvalidInput",
      "InvalidState",
      "NotFound"
    ],
    "CreateApiKeyResult": [
      "CreateApiKeySuccess",
      "Forbidden",
      "InvalidInput",
      "NotFound",
      "QuotaExceeded"
    ],
    "CreateBoardResult": [
      "BoardSuccess",
      "InvalidInput"
    ],
    "CreateWebhookEndpointResult": [
      "CreateWebhookEndpointSuccess",
      "InvalidInput",
      "QuotaExceeded",
      "RateLimited"
    ],
    "DataExportResult": [
      "DataExport",
      "NotFound"
    ],
    "DeclineBoardInvitationResult": [
      "DeclineBoardInvitationSuccess",
      "NotFound"
    ],
    "DeleteAccountResult": [
      "DeleteAccountSuccess",
      "InvalidCredentials",
      "RateLimited"
    ],
    "DeleteBoardResult": [
      "DeleteBoardSuccess",
      "Forbidden",
      "NotFound"
    ],
    "DeleteChunkResult": [
      "DeleteChunkSuccess",
      "InvalidState",
      "NotFound"
    ],
    "DeleteGenerationResult": [
      "DeleteGenerationSuccess",
      "InvalidState",
      "NotFound"
    ],
    "DeleteGenerationsResult": [
      "DeleteGenerationsSuccess",
      "InvalidInput"
    ],
    "DeleteWebhookEndpointResult": [
      "DeleteWebhookEndpointSuccess",
      "NotFound",
      "RateLimited"
    ],
    "Error": [
      "AccountSuspended",
      "EmailTaken",
      "Forbidden",
      "InsufficientCredits",
      "InvalidCredentials",
      "InvalidInput",
      "InvalidState",
      "NotFound",
      "QuotaExceeded",
      "RateLimited"
    ],
    "GenerateResult": [
      "Forbidden",
      "GenerateSuccess",
      "InsufficientCredits",
      "InvalidInput",
      "NotFound",
      "RateLimited"
    ],
    "GenerationDeletionError": [
      "InvalidState",
      "NotFound"
    ],
    "GrantCreditsResult": [
      "Forbidden",
      "GrantCreditsSuccess",
      "InvalidInput",
      "NotFound"
    ],
    "LeaveBoardResult": [
      "InvalidState",
      "LeaveBoardSuccess",
      "NotFound"
    ],
    "LogoutResult": [
      "InvalidState",
      "LogoutSuccess"
    ],
    "Node": [
      "AiModel",
      "ApiKey",
      "Asset",
      "Board",
      "Chunk",
      "DataExport",
      "Generation",
      "Preset",
      "User",
      "WebhookEndpoint"
    ],
    "RedeliverWebhookResult": [
      "InvalidState",
      "NotFound",
      "RateLimited",
      "RedeliverWebhookSuccess"
    ],
    "ReinstateUserResult": [
      "Forbidden",
      "NotFound",
      "UserSuspensionSuccess"
    ],
    "RemoveBoardMemberResult": [
      "BoardSuccess",
      "Forbidden",
      "InvalidState",
      "NotFound"
    ],
    "RenameBoardResult": [
      "BoardSuccess",
      "Forbidden",
      "InvalidInput",
      "NotFound"
    ],
    "RequestChunkUploadResult": [
      "ChunkUploadTicket",
      "InvalidInput",
      "QuotaExceeded",
      "RateLimited"
    ],
    "RequestDataExportResult": [
      "RateLimited",
      "RequestDataExportSuccess"
    ],
    "RequestPasswordResetResult": [
      "InvalidInput",
      "RateLimited",
      "RequestPasswordResetSuccess"
    ],
    "ResetPasswordResult": [
      "InvalidCredentials",
      "InvalidInput",
      "RateLimited",
      "ResetPasswordSuccess"
    ],
    "RevokeApiKeyResult": [
      "Forbidden",
      "NotFound",
      "RevokeApiKeySuccess"
    ],
    "RevokeBoardInvitationResult": [
      "BoardSuccess",
      "Forbidden",
      "InvalidInput",
      "NotFound"
    ],
    "RotateWebhookSecretResult": [
      "InvalidInput",
      "NotFound",
      "RateLimited",
      "RotateWebhookSecretSuccess"
    ],
    "RotateWebhookSigningSecretResult": [
      "InvalidInput",
      "RateLimited",
      "WebhookSecretRotation"
    ],
    "SetAdminSettingResult": [
      "AdminSettingSuccess",
      "Forbidden",
      "InvalidInput"
    ],
    "SuspendUserResult": [
      "Forbidden",
      "InvalidInput",
      "NotFound",
      "UserSuspensionSuccess"
    ],
    "UpdateWebhookEndpointResult": [
      "InvalidInput",
      "NotFound",
      "RateLimited",
      "UpdateWebhookEndpointSuccess"
    ],
    "UploadChunkResult": [
      "InvalidInput",
      "QuotaExceeded",
      "RateLimited",
      "UploadChunkSuccess"
    ],
    "UpsertModelResult": [
      "Forbidden",
      "InvalidInput",
      "ModelSuccess"
    ],
    "UpsertPresetResult": [
      "Forbidden",
      "InvalidInput",
      "NotFound",
      "PresetSuccess"
    ]
  }
};
      export default result;
    