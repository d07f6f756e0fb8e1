<?php

return [
    'paths' => [
        resource_path('views'),
    ],

    // realpath() yields false when the dir is missing, and view:cache then
    // fails with "Please provide a valid cache path": storage/ must be complete.
    'compiled' => env(
        'VIEW_COMPILED_PATH',
        realpath(storage_path('framework/views'))
    ),
];
