export { loadConfig, ConfigError, type Config } from './load.js'
export { ConfigSchema } from './schema.js'
