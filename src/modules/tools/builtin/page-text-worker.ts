import { threadTask } from '../../../platform/thread-pool.ts';
import { pageText } from './page-text.ts';

export interface PageHtml {
  html: string;
  base: string;
}

/** A conversion thread (see html-converter.ts): the page's title and text, or the error the converter threw. */
export default threadTask(({ html, base }: PageHtml) => pageText(html, base));
