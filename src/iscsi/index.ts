// What the target side (drivers/targets: tgt, LIO) and the initiator side (src/connector) share
// about iSCSI: the one rule for iSCSI names, portals and provider_location, and CHAP credentials
// with provider_auth. Both sides import this module, so a name, portal or secret one side writes
// is exactly what the other accepts.
export { assertInitiatorName, assertTargetIqn, isIscsiName, MAX_ISCSI_NAME_LENGTH } from './iscsi-name.js';
export {
  assertPort,
  assertPortalHost,
  formatPortal,
  formatProviderLocation,
  parsePortal,
  parseProviderLocation,
  sanitizeHost,
  type Portal,
  type ProviderLocation,
} from './provider-location.js';
export {
  assertChapCredential,
  CHAP_ALPHABET,
  CHAP_SYMBOL_GROUPS,
  CHAP_USERNAME_LENGTH,
  chapForExport,
  formatProviderAuth,
  generateChapCredentials,
  parseProviderAuth,
  type ChapCredentials,
} from './chap.js';
