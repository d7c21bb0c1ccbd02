export { loadAssets, type Asset } from './assets.js';
export { startDashboard, type Dashboard, type DashboardOptions } from './dashboard.js';
export { DeviceImage, readbackBatches } from './device-image.js';
export { FrameSampler, type BoInfo, type RunInfo, type RunStatus, type Coherence } from './frame-sampler.js';
export { startUiServer, UiListenError, type UiServer, type UiServerOptions } from './http-server.js';
export { PageMap, readDirtyPages, forEachSet, PAGE_CLEAN, PAGE_DIRTY, PAGE_SENDING, PAGE_DEVICE_NEWER } from './page-map.js';
export { renderReport, writeReport, type ReportData } from './report-writer.js';
export { FrameSeries, RollingPercentiles, type Column, type Columns, type Merge, type Row } from './series.js';
export { UpdateChannel, encodeFrame, type Published, type UpdateChannelOptions } from './update-channel.js';
