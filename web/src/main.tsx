/** Entry of the web app: the root, the styles, the service worker. */
import { createRoot } from 'react-dom/client'
import { App } from './app.js'
import './styles.css'

createRoot(document.getElementById('root')!).render(<App />)

if ('serviceWorker' in navigator) {
  navigator.serviceWorker.register('/sw.js').catch((err) => console.warn('service worker not registered:', err))
}
