<?php

if (! function_exists('release_name')) {
    /**
     * Name of the release directory this code runs from: base_path() may be
     * reached through the `current` symlink, the real path says which release.
     */
    function release_name(): string
    {
        $real = realpath(base_path());

        return basename($real === false ? base_path() : $real);
    }
}
